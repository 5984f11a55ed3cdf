"""Conformance: the portfolio's histories replayed against their pinned definition.

Non-conforming events are written with ``history.append`` directly, as a buggy
or hostile tool with database access would: the chain stays valid, so only the
replay can tell.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlmodel import select

from mspflow import history
from mspflow.audit.conformance import DEVIATION_KINDS
from mspflow.store import models as m
from mspflow.store import read_session, write_session
from tests.audit.conftest import WF, Portfolio

LABEL = f"{WF.name}@{WF.version}#{WF.content_hash[:16]}"
LATER = datetime(2028, 6, 1, 9, 0, tzinfo=timezone.utc)


def append(portfolio: Portfolio, **fields: Any) -> int:
    engine = portfolio.engine()
    try:
        with write_session(engine) as s:
            values: dict[str, Any] = {
                "at": LATER,
                "actor": "ana",
                "role": "secretariat",
                "definition": LABEL,
                **fields,
            }
            return history.append(s, **values).seq
    finally:
        engine.dispose()


def deviations(portfolio: Portfolio, *args: str) -> list[dict[str, Any]]:
    out = portfolio.run("audit", "conformance", "--json", *args, code=8).output
    data = json.loads(out[: out.rindex("}") + 1])
    assert data["conforms"] is False
    return list(data["deviations"])


def test_the_portfolio_conforms(portfolio: Portfolio) -> None:
    out = portfolio.run("audit", "conformance").output
    assert out.startswith("the portfolio conforms to its definitions: 3 partnerships")
    data = json.loads(portfolio.run("audit", "conformance", "--json", "-p", "water").output)
    assert data["conforms"] and data["partnerships"] == 1 and data["deviations"] == []


def test_a_move_the_definition_does_not_have(portfolio: Portfolio) -> None:
    # png is at step 3; nothing leads from there straight to step 9.
    seq = append(
        portfolio,
        partnership="png",
        kind="advance",
        trigger="advance__reviewing",
        from_state="building-relationships",
        to_state="reviewing",
    )
    found = deviations(portfolio, "-p", "png")
    kinds = {(d["seq"], d["kind"]) for d in found}
    assert (seq, "not-allowed") in kinds
    assert (None, "state-drift") in kinds  # the partnership row still says step 3
    line = portfolio.run("audit", "conformance", code=8).output
    assert (
        f"png event {seq}: not-allowed: advance from 3 Building relationships to 9 Reviewing"
        in line
    )
    assert "is not a transition of msp-12-step" in line
    assert line.splitlines()[-1].startswith("mspflow: 2 deviation(s) in 1 partnership(s)")


def test_a_gate_passed_with_criteria_unmet_and_a_waiver_never_recorded(
    portfolio: Portfolio,
) -> None:
    evidence = {"resources-mapped": {"task": "3.1", "found": "3 resources"}}
    seq = append(
        portfolio,
        partnership="png",
        kind="advance",
        trigger="advance__planning",
        from_state="building-relationships",
        to_state="planning",
        evidence=evidence,
        waived=["risks-assessed"],
    )
    found = [d for d in deviations(portfolio, "-p", "png") if d["seq"] == seq]
    unmet = sorted(d["message"].split("criterion ")[1].split(" ")[0] for d in found
                   if d["kind"] == "gate-unmet")  # fmt: skip
    assert unmet == [
        "accountability-agreed", "agreement-signed", "governance-agreed",
        "rewards-and-risks-weighed",
    ]  # fmt: skip
    (waiver,) = [d for d in found if d["kind"] == "waiver-unrecorded"]
    assert "risks-assessed (task 3.2) counted as waived" in waiver["message"]
    assert "step 3" in waiver["message"]


def test_a_waiver_recorded_in_the_visit_is_accepted(portfolio: Portfolio) -> None:
    gate = [c.id for c in WF.step(3).gate]
    append(
        portfolio,
        partnership="png",
        kind="waive",
        from_state="building-relationships",
        to_state="building-relationships",
        reason="ok",
        waived=["risks-assessed"],
        data={"step": "building-relationships", "task": "3.2", "gate_debt": False},
    )
    seq = append(
        portfolio,
        partnership="png",
        kind="advance",
        trigger="advance__planning",
        from_state="building-relationships",
        to_state="planning",
        evidence={c: {"task": "x", "found": "y"} for c in gate if c != "risks-assessed"},
        waived=["risks-assessed"],
    )
    portfolio.sql("UPDATE partnership SET state = 'planning' WHERE slug = 'png'")
    portfolio.run("audit", "conformance")
    # A waiver holds for one visit only: back to 3 and out again without a new one.
    append(
        portfolio,
        partnership="png",
        kind="revisit",
        trigger="revisit__building_relationships",
        from_state="planning",
        to_state="building-relationships",
        reason="again",
    )
    again = append(
        portfolio,
        partnership="png",
        kind="advance",
        trigger="advance__planning",
        from_state="building-relationships",
        to_state="planning",
        evidence={c: {"task": "x", "found": "y"} for c in gate if c != "risks-assessed"},
        waived=["risks-assessed"],
    )
    found = deviations(portfolio)
    assert [(d["seq"], d["kind"]) for d in found] == [(again, "waiver-unrecorded")]
    assert seq < again


def test_reason_missing_and_wrong_trigger(portfolio: Portfolio) -> None:
    seq = append(
        portfolio,
        partnership="png",
        kind="revisit",
        trigger="advance__getting_started",
        from_state="building-relationships",
        to_state="getting-started",
    )
    portfolio.sql("UPDATE partnership SET state = 'getting-started' WHERE slug = 'png'")
    found = {d["kind"]: d["message"] for d in deviations(portfolio) if d["seq"] == seq}
    assert set(found) == {"not-allowed", "reason-missing"}
    assert (
        "trigger advance__getting_started is not the definition's revisit__getting_started"
        in (found["not-allowed"])
    )


def test_automatic_moves_off_cadence_or_by_someone_else(portfolio: Portfolio) -> None:
    events = portfolio.events()
    fired = next(e for e in events if e.kind == "review-due")
    first = json.loads(fired.data)
    engine = portfolio.engine()
    try:
        with read_session(engine) as s:
            panel = s.get(m.Schedule, first["schedule_id"])
            assert panel is not None and panel.cadence == "quarterly"
            png = s.exec(select(m.Partnership).where(m.Partnership.slug == "png")).one()
            png_id = png.id
    finally:
        engine.dispose()
    # png goes 3 -> ... -> 8 by recorded moves, so that review-due moves start from step 8.
    portfolio.sql(
        "UPDATE schedule SET partnership_id = ? WHERE id = ?", params=(png_id, first["schedule_id"])
    )
    state = "building-relationships"
    for dest in ("planning", "structuring", "mobilizing", "delivering", "measuring-progress"):
        t = next(t for t in WF.transitions if t.source == state and t.dest == dest)
        append(
            portfolio,
            partnership="png",
            kind="advance",
            trigger=t.trigger,
            from_state=state,
            to_state=dest,
            evidence={c: {"task": "x", "found": "y"} for c in t.gate},
        )
        state = dest

    def fire(occurrence: str, at: datetime, **extra: Any) -> int:
        named = {
            "schedule_id": first["schedule_id"],
            "schedule": "review-panel",
            "occurrence": occurrence,
        }
        seq = append(
            portfolio,
            partnership="png",
            kind="review-due",
            trigger="review_due__reviewing",
            from_state="measuring-progress",
            to_state="reviewing",
            at=at,
            actor=extra.pop("actor", "scheduler"),
            role=extra.pop("role", "system"),
            data=extra.pop("data", named),
        )
        back = next(t for t in WF.transitions if t.source == "reviewing" and t.dest == "delivering")
        append(
            portfolio,
            partnership="png",
            kind="advance",
            trigger=back.trigger,
            from_state="reviewing",
            to_state="delivering",
            evidence={c: {"task": "x", "found": "y"} for c in back.gate},
        )
        fwd = next(
            t for t in WF.transitions if t.source == "delivering" and t.dest == "measuring-progress"
        )
        append(
            portfolio,
            partnership="png",
            kind="advance",
            trigger=fwd.trigger,
            from_state="delivering",
            to_state="measuring-progress",
            evidence={c: {"task": "x", "found": "y"} for c in fwd.gate},
        )
        return seq

    due = datetime(2027, 9, 1, 10, 0, tzinfo=timezone.utc)  # quarterly from 1 June, 10:00 UTC
    on_time = fire("2027-09-01T10:00:00Z", due + timedelta(minutes=1))
    not_an_occurrence = fire("2027-10-01T10:00:00Z", due + timedelta(days=31))
    early = fire("2027-12-01T10:00:00Z", due + timedelta(days=80))
    twice = fire("2027-09-01T10:00:00Z", due + timedelta(days=100))
    by_hand = fire(
        "2028-03-01T10:00:00Z", due + timedelta(days=190), actor="ana", role="secretariat"
    )
    unnamed = fire("", due + timedelta(days=300), data={})
    foreign = fire("", due + timedelta(days=301), data={"schedule_id": 999, "occurrence": "x"})
    portfolio.sql("UPDATE partnership SET state = 'measuring-progress' WHERE slug = 'png'")
    found = [(d["seq"], d["kind"], d["message"]) for d in deviations(portfolio, "-p", "png")]
    assert [(s, k) for s, k, _ in found] == [
        (not_an_occurrence, "off-cadence"),
        (early, "off-cadence"),
        (twice, "off-cadence"),
        (by_hand, "not-scheduler"),
        (unnamed, "off-cadence"),
        (foreign, "off-cadence"),
    ]
    assert on_time < not_an_occurrence
    messages = [msg for _, _, msg in found]
    assert "2027-10-01T10:00:00Z is not an occurrence of schedule" in messages[0]
    assert "quarterly from 2027-06-01 at 10:00 UTC" in messages[0]
    assert "before its occurrence 2027-12-01T10:00:00Z" in messages[1]
    assert "fired a second time" in messages[2]
    assert "review-due made by ana (secretariat)" in messages[3]
    assert "names no schedule occurrence" in messages[4]
    assert "schedule #999 is not a schedule of this partnership" in messages[5]


def test_unknown_definition_partnership_and_a_missing_start(portfolio: Portfolio) -> None:
    a = append(
        portfolio,
        partnership="ghost",
        kind="advance",
        trigger="advance__planning",
        from_state="building-relationships",
        to_state="planning",
        definition="msp-12-step@9999#0123456789abcdef",
    )
    found = {(d["partnership"], d["seq"], d["kind"]) for d in deviations(portfolio)}
    assert ("ghost", a, "unknown-partnership") in found
    assert ("ghost", a, "unknown-definition") in found
    assert ("ghost", a, "not-allowed") in found  # it never started


def test_a_second_start_and_a_start_at_a_step_not_allowed(portfolio: Portfolio) -> None:
    again = append(portfolio, partnership="png", kind="create", to_state="getting-started")
    found = [d for d in deviations(portfolio) if d["seq"] == again]
    assert [d["kind"] for d in found] == ["not-allowed"]
    assert "a second create event" in found[0]["message"]


def test_every_deviation_kind_is_documented() -> None:
    assert set(DEVIATION_KINDS) == {
        "not-allowed", "gate-unmet", "waiver-unrecorded", "reason-missing", "not-scheduler",
        "off-cadence", "state-mismatch", "state-drift", "unknown-definition",
        "unknown-partnership", "no-history",
    }  # fmt: skip


def test_state_mismatch_and_no_history(portfolio: Portfolio) -> None:
    seq = append(
        portfolio,
        partnership="png",
        kind="revisit",
        trigger="revisit__getting_started",
        from_state="reviewing",
        to_state="getting-started",
        reason="x",
    )
    portfolio.sql(
        "UPDATE partnership SET state = 'getting-started' WHERE slug = 'png'",
        "INSERT INTO partnership (slug, name, workflow_name, workflow_version, workflow_hash, "
        "state, version, entered_seq, timezone, created_at, updated_at) "
        "SELECT 'empty', 'Empty', workflow_name, workflow_version, workflow_hash, "
        "'getting-started', 1, 0, 'UTC', created_at, updated_at "
        "FROM partnership WHERE slug = 'png'",
    )
    found = {(d["partnership"], d["seq"], d["kind"]) for d in deviations(portfolio)}
    assert found == {("png", seq, "state-mismatch"), ("empty", None, "no-history")}
