"""Exports, read back: CSV and JSON Lines by hand, XES and OCEL 2.0 with pm4py."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import threading
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pm4py  # type: ignore[import-untyped]
import pytest

from mspflow.audit.export import OBJECT_TYPES, activity, csv_cell, is_state_change
from mspflow.clock import parse_instant
from mspflow.definition import Workflow
from mspflow.services import Mspflow
from mspflow.store import models as m
from tests.audit.conftest import WF, Portfolio
from tests.conftest import invoke

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

    try:
        clock = ManualClock(portfolio_end(portfolio))
        service = Mspflow(engine=engine, clock=clock, actor=Actor("ana", "secretariat"))
        service.partnerships.move(partnership="png", kind="revisit", dest="1", reason="bell\x07")
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


# --------------------------------------------------------------------------- hostile cells


FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\tcmd",
    "\r=1",
]


def test_csv_cells_that_spreadsheets_run_start_with_a_quote(
    service: Mspflow, db_url: str, msp: Workflow, msp_text: str
) -> None:
    """OWASP's CSV-injection advice: a cell starting with = + - @, tab or CR gets a quote."""

    service.partnerships.create(name="Hostile", workflow=msp, definition_text=msp_text, slug="h")
    criteria = [c.id for c in msp.steps[0].gate]
    for criterion, reason in zip(criteria, FORMULAS, strict=False):
        service.partnerships.waive(partnership="h", criterion=criterion, reason=reason)
    env = {"MSPFLOW_DATABASE_URL": db_url, "MSPFLOW_ACTOR": "ivo"}
    result = invoke("audit", "export", "--format", "csv", env=env)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output, newline="")))
    reasons = [r["reason"] for r in rows if r["kind"] == "waive"]
    written = FORMULAS[: len(criteria)]
    assert reasons == ["'" + f for f in written]
    assert rows[0]["kind"] == "create" and rows[0]["reason"] == ""  # other cells unchanged
    assert csv_cell("plain -text") == "plain -text" and csv_cell(-3) == -3


# --------------------------------------------------------------------------- -o writes through


def test_output_to_a_device_is_written_in_place(portfolio: Portfolio, tmp_path: Path) -> None:
    """A character device (a twin of /dev/null made with mknod, as root) stays a device."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    for fmt in ("csv", "xes"):
        portfolio.run("audit", "export", "--format", fmt, "-o", str(null))
        assert stat.S_ISCHR(os.stat(null).st_mode)
    written = {p.name for p in tmp_path.iterdir() if not p.name.startswith("portfolio.db")}
    assert written == {"null"}  # no file made beside it


def test_output_to_a_fifo_is_written_in_place(portfolio: Portfolio, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    portfolio.run("audit", "export", "--format", "jsonl", "-o", str(fifo))
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert len(got[0].decode().splitlines()) == len(portfolio.events())


def test_output_through_a_link_writes_its_target(portfolio: Portfolio, tmp_path: Path) -> None:
    target = tmp_path / "real.xes"
    target.write_text("old")
    link = tmp_path / "link.xes"
    link.symlink_to(target)
    portfolio.run("audit", "export", "--format", "xes", "-o", str(link))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().startswith("<?xml")


def test_output_dash_is_standard_output(portfolio: Portfolio, tmp_path: Path) -> None:
    out = portfolio.run("audit", "export", "--format", "xes", "-o", "-").output
    assert out.startswith("<?xml") and not (tmp_path / "-").exists()
