"""Exports, read back: CSV and JSON Lines by hand, XES and OCEL 2.0 with pm4py."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pm4py  # type: ignore[import-untyped]
import pytest

from mspflow.audit.export import OBJECT_TYPES, activity, is_state_change
from mspflow.clock import parse_instant
from mspflow.store import models as m
from tests.audit.conftest import WF, Portfolio

pytestmark = pytest.mark.filterwarnings("ignore:Install the optional requirement")

ALLOWED = {(t.source, t.dest) for t in WF.transitions}


def test_csv_has_one_row_per_event_with_the_json_keys(portfolio: Portfolio) -> None:
    events = portfolio.events()
    out = portfolio.run("audit", "export", "--format", "csv").output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["seq"]) for r in rows] == [e.seq for e in events]
    first = json.loads(portfolio.run("audit", "log", "--json").output)[1]
    row = rows[1]
    assert row["hash"] == first["hash"] and row["to"] == first["to"]
    assert json.loads(row["evidence"]) == first["evidence"]


def test_jsonl_has_one_object_per_line(portfolio: Portfolio, tmp_path: Path) -> None:
    out = portfolio.run("audit", "export", "--format", "jsonl", "-p", "png").output
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["kind"] for r in rows] == ["onboard", "revisit"]
    summary = portfolio.run(
        "audit", "export", "--format", "jsonl", "-o", str(tmp_path / "h.jsonl"), "--json"
    ).output
    assert json.loads(summary)["events"] == len(portfolio.events())
    assert len((tmp_path / "h.jsonl").read_text().splitlines()) == len(portfolio.events())


@pytest.mark.parametrize("fmt", ["xes", "ocel"])
def test_xes_and_ocel_need_an_output_file(portfolio: Portfolio, fmt: str) -> None:
    assert "--output FILE" in portfolio.run("audit", "export", "--format", fmt, code=2).output


def test_xes_read_by_pm4py_matches_the_database(portfolio: Portfolio, tmp_path: Path) -> None:
    path = tmp_path / "history.xes"
    summary = json.loads(
        portfolio.run("audit", "export", "--format", "xes", "-o", str(path), "--json").output
    )
    events = portfolio.events()
    cases = portfolio.count(m.Partnership)
    assert (summary["cases"], summary["events"]) == (cases, len(events))
    log = pm4py.read_xes(str(path), return_legacy_log_object=False)
    assert log["case:concept:name"].nunique() == cases == 3
    assert len(log) == len(events)
    assert sorted(log["seq"].astype(int)) == [e.seq for e in events]
    by_seq = {e.seq: e for e in events}
    for _, row in log.iterrows():
        e = by_seq[int(row["seq"])]
        assert row["concept:name"] == activity(e)
        assert row["case:concept:name"] == e.partnership
        assert (row["org:resource"], row["org:role"]) == (e.actor, e.role)
        assert row["lifecycle:transition"] == "complete"
        assert row["time:timestamp"].isoformat().startswith(e.at[:19])
    # The directly-follows relation over steps holds only moves the definition allows.
    steps = log[log["state_change"].astype(bool)]
    dfg, _starts, _ends = pm4py.discover_dfg(steps)
    assert dfg and set(dfg) <= ALLOWED, set(dfg) - ALLOWED
    assert ("measuring-progress", "reviewing") in dfg  # the scheduler's move
    assert ("moving-on", "institutionalized") in dfg


def test_xes_declares_the_standard_extensions(portfolio: Portfolio, tmp_path: Path) -> None:
    path = tmp_path / "history.xes"
    portfolio.run("audit", "export", "--format", "xes", "-o", str(path), "-p", "png")
    root = ET.parse(path).getroot()
    ns = "{http://www.xes-standard.org/}"
    assert root.tag == f"{ns}log" and root.get("xes.version") == "1849-2016"
    prefixes = {e.get("prefix"): e.get("uri") for e in root.iter(f"{ns}extension")}
    assert set(prefixes) == {"concept", "time", "org", "lifecycle"}
    assert all(uri and uri.endswith(f"/{p}.xesext") for p, uri in prefixes.items())
    traces = root.findall(f"{ns}trace")
    assert len(traces) == 1
    names = [
        s.get("value")
        for ev in traces[0].findall(f"{ns}event")
        for s in ev.findall(f"{ns}string")
        if s.get("key") == "concept:name"
    ]
    assert names == ["delivering", "building-relationships"]


def test_xes_stays_well_formed_with_control_characters(
    portfolio: Portfolio, tmp_path: Path
) -> None:
    engine = portfolio.engine()
    from mspflow.auth import Actor
    from mspflow.clock import ManualClock
    from mspflow.engine import PartnershipService

    try:
        clock = ManualClock(portfolio_end(portfolio))
        service = PartnershipService(engine, clock)
        service.move(
            Actor("ana", "secretariat"), "png", kind="revisit", dest="1", reason="bell\x07"
        )
    finally:
        engine.dispose()
    path = tmp_path / "history.xes"
    portfolio.run("audit", "export", "--format", "xes", "-o", str(path))
    reasons = [s.get("value") for s in ET.parse(path).iter() if s.get("key") == "reason"]
    assert "bell\ufffd" in reasons


def portfolio_end(portfolio: Portfolio) -> datetime:
    return parse_instant(portfolio.events()[-1].at)


def test_ocel_read_by_pm4py_matches_the_database(portfolio: Portfolio, tmp_path: Path) -> None:
    path = tmp_path / "history.ocel.json"
    summary = json.loads(
        portfolio.run("audit", "export", "--format", "ocel", "-o", str(path), "--json").output
    )
    events = portfolio.events()
    expected = {"partnership": portfolio.count(m.Partnership)}
    expected |= {k.name: portfolio.count(k.model) for k in OBJECT_TYPES}
    assert expected["meeting"] and expected["review"] and expected["partner"]
    assert summary["objects"] == expected and summary["events"] == len(events)
    ocel = pm4py.read_ocel2_json(str(path))
    assert len(ocel.events) == len(events)
    counts = ocel.objects["ocel:type"].value_counts().to_dict()
    assert counts == {k: v for k, v in expected.items() if v}
    assert sorted(ocel.events["ocel:activity"].unique()) == sorted({activity(e) for e in events})
    rel = ocel.relations
    # Every event is related to its partnership ...
    of_partnership = rel[rel["ocel:qualifier"] == "partnership"]
    assert len(of_partnership) == len(events)
    # ... and the gate that needed meetings names the meeting it saw.
    held = rel[rel["ocel:qualifier"] == "meetings-held"]
    assert list(held["ocel:type"]) == ["meeting"]
    # pm4py keeps one qualifier per event and object; the file has them all.
    data = json.loads(path.read_text())
    signed = [
        r["objectId"]
        for e in data["events"]
        for r in e["relationships"]
        if r["qualifier"] == "agreement-signed"
    ]
    assert len(signed) == 3 and all(oid.startswith("partner:") for oid in signed)
    review_due = next(e for e in events if e.kind == "review-due")
    scheduled = rel[rel["ocel:eid"] == f"event:{review_due.seq}"]
    assert "schedule" in set(scheduled["ocel:type"])


def test_ocel_of_one_partnership(portfolio: Portfolio, tmp_path: Path) -> None:
    path = tmp_path / "png.ocel.json"
    portfolio.run("audit", "export", "--format", "ocel", "-o", str(path), "-p", "png")
    data = json.loads(path.read_text())
    assert {o["type"] for o in data["objects"]} == {"partnership"}
    assert [e["type"] for e in data["events"]] == ["delivering", "building-relationships"]
    assert {t["name"] for t in data["objectTypes"]} >= {"partnership", "partner", "meeting"}
    assert {t["name"] for t in data["eventTypes"]} == {"delivering", "building-relationships"}


def test_activity_names_states_for_moves_and_kinds_otherwise(portfolio: Portfolio) -> None:
    for e in portfolio.events():
        if is_state_change(e):
            assert activity(e) == e.to_state
        else:
            assert activity(e) == e.kind and e.kind in ("waive", "scale-up", "backfill")


def test_a_failed_export_leaves_no_file(portfolio: Portfolio, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    path = folder / "h.xes"
    portfolio.run("audit", "export", "--format", "xes", "-o", str(path), "-p", "nowhere", code=4)
    assert list(folder.iterdir()) == []
