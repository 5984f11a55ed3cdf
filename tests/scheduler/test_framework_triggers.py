"""What the scheduler does for the framework's substance: a review that jumps steps
keeps their unmet criteria as gate debt (9.1), a milestone past its deadline is
flagged (8.1, line 1100), and a midterm review is the partners' choice (1197)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import col, select

from mspflow.clock import ManualClock
from mspflow.services import Mspflow
from mspflow.store import models as m
from mspflow.store import read_session
from mspflow.walk import WALK, record_piece

BERLIN = ZoneInfo("Europe/Berlin")


def at(y: int, mo: int, d: int, h: int = 9) -> datetime:
    return datetime(y, mo, d, h, tzinfo=BERLIN)


def flags(engine: Engine, purpose: str) -> list[m.FiredTrigger]:
    with read_session(engine) as s:
        return list(
            s.exec(
                select(m.FiredTrigger)
                .where(m.FiredTrigger.purpose == purpose)
                .order_by(col(m.FiredTrigger.id))
            )
        )


def test_a_review_that_jumps_steps_keeps_their_unmet_criteria_as_gate_debt(
    engine: Engine, clock: ManualClock, service: Mspflow, water: str, sweeper_for: Any
) -> None:
    record = service.evidence.record
    record_piece(service, water, WALK[7]["meetings-held"])  # met; the rest of 7 and 8 is not
    record(
        partnership=water,
        kind="schedule",
        values={"kind": "review-panel", "cadence": "quarterly", "start": "2027-04-15"},
    )
    clock.set(at(2027, 4, 15))
    assert sweeper_for().sweep().moved == [water]
    event = service.partnerships.history(partnership=water).events[-1]
    owed = [
        "7:action-plan-current",
        "7:health-checked",
        "8:milestones-set",
        "8:progress-monitored",
        "8:process-monitored",
        "8:report-issued",
    ]
    assert event.kind == "review-due" and event.data["gate_debt"] == owed
    debt = {
        f"{d.step}:{d.criterion}": d.status
        for d in service.partnerships.gate_debt(partnership=water)
    }
    assert debt == dict.fromkeys(owed, "open")
    assert service.partnerships.get(partnership=water).gate_debt_open == 6
    # Backfilled with the evidence, or waived, like onboarding's debt.
    record_piece(service, water, WALK[7]["health-checked"])
    done = service.partnerships.backfill(partnership=water)
    assert done.settled == ["7:health-checked"]


def test_a_milestone_past_its_deadline_is_flagged_once_and_closed_when_reached(
    engine: Engine, clock: ManualClock, service: Mspflow, water: str, sweeper_for: Any
) -> None:
    record = service.evidence.record
    record(
        partnership=water, kind="milestone", values={"name": "Pumps delivered", "due": "2027-04-30"}
    )
    record(
        partnership=water,
        kind="milestone",
        values={"name": "Committees trained", "due": "2027-04-30", "done": "2027-04-29"},
    )
    sweeper = sweeper_for()
    clock.set(at(2027, 4, 30, 23))
    sweeper.sweep()
    assert flags(engine, "milestone-overdue") == []  # the deadline day is not over
    assert not service.partnerships.show(partnership=water).milestones[0].overdue
    clock.set(at(2027, 5, 1, 9))
    report = sweeper.sweep()
    [flag] = flags(engine, "milestone-overdue")
    assert report.fired["milestone-overdue notified"] == 1
    assert json.loads(flag.detail)["name"] == "Pumps delivered"
    with read_session(engine) as s:
        sent = s.exec(select(m.Notification).where(m.Notification.trigger_id == flag.id)).all()
    assert sent and all("Pumps delivered is past its deadline" in n.subject for n in sent)
    late = [x for x in service.partnerships.show(partnership=water).milestones if x.overdue]
    assert [x.name for x in late] == ["Pumps delivered"]
    clock.set(at(2027, 5, 2, 9))
    sweeper.sweep()
    assert len(flags(engine, "milestone-overdue")) == 1  # once
    service.evidence.update_milestone(
        partnership=water,
        milestone="Pumps delivered",
        values={"done": "2027-05-02", "delay": "customs held the shipment"},
    )
    clock.set(at(2027, 5, 3, 9))
    assert sweeper.sweep().resolved == 1
    [flag] = flags(engine, "milestone-overdue")
    assert flag.resolved_at is not None
    assert not any(x.overdue for x in service.partnerships.show(partnership=water).milestones)


def test_a_new_deadline_is_flagged_again_when_it_passes(
    engine: Engine, clock: ManualClock, service: Mspflow, water: str, sweeper_for: Any
) -> None:
    service.evidence.record(
        partnership=water, kind="milestone", values={"name": "Pumps delivered", "due": "2027-04-30"}
    )
    sweeper = sweeper_for()
    clock.set(at(2027, 5, 1))
    sweeper.sweep()
    service.evidence.update_milestone(
        partnership=water, milestone="Pumps delivered", values={"due": "2027-05-31"}
    )
    clock.set(at(2027, 5, 20))
    sweeper.sweep()
    assert len(flags(engine, "milestone-overdue")) == 1
    clock.set(at(2027, 6, 1))
    sweeper.sweep()
    keys = [f.key.rsplit(":", 1)[1] for f in flags(engine, "milestone-overdue")]
    assert keys == ["2027-04-30", "2027-05-31"]


def test_the_midterm_review_is_opt_in_and_follows_the_scope(service: Mspflow) -> None:
    ref = service.partnerships.create(name="Scoped", slug="scoped").id

    def midterm() -> list[str]:
        return [
            s.starts_on
            for s in service.schedules.list(partnership=ref)
            if s.kind == "midterm-review" and s.active
        ]

    record_piece(service, ref, WALK[2]["scope-defined"])  # 2027-03-01 .. 2029-02-28
    assert midterm() == []  # recording a scope makes no midterm review
    service.evidence.record(partnership=ref, kind="schedule", values={"kind": "midterm-review"})
    assert midterm() == ["2028-02-29"]  # halfway through the time frame
    service.evidence.record(partnership=ref, kind="scope", values={"end": "2031-02-28"})
    assert midterm() == ["2029-02-28"]  # moved with the new end
