"""Evidence that must be fresh: ``since: visit``, ``since: cycle`` and ``within``.

A workflow declares, per criterion, how recent its records must be; going round
the implementation loop (7 -> 8 -> 9 -> 10 -> 7) then needs new records at each
gate, and ``partnership show`` says which records are stale and since when new
ones are needed. Run on a copy of the workflow's version 2018.1 (which declared no
freshness) given a few fresh criteria, so that each rule is seen alone; the bundled
version's own rules are walked in ``tests/test_loop.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mspflow.clock import ManualClock
from mspflow.definition import parse_workflow
from mspflow.errors import DefinitionError, GateNotMet
from mspflow.services import Mspflow
from mspflow.walk import WALK, record_piece
from tests.conftest import SECRETARIAT

OLD = Path(__file__).parent / "definition" / "versions" / "msp-12-step-2018.1.yaml"


@pytest.fixture(scope="module")
def msp_text() -> str:
    """Version 2018.1 of the bundled workflow, before it declared fresh evidence."""
    return OLD.read_text(encoding="utf-8")


FRESH = {
    "      - id: meetings-held\n": "since: visit",
    "      - id: health-checked\n": "since: visit",
    "      - id: report-issued\n": "since: cycle",  # a report of this pass round the loop
    "      - id: progress-monitored\n": "within: P30D",
}


def fresh_text(text: str) -> str:
    """The bundled workflow with the loop's start and three fresh criteria."""
    for line, rule in FRESH.items():
        assert line in text
        text = text.replace(line, f"{line}        {rule}\n")
    return text.replace("\ninitial: ", "\ncycle_start: 7\ninitial: ", 1)


@pytest.fixture
def app(engine: Engine, clock: ManualClock, msp_text: str) -> Mspflow:
    app = Mspflow(engine=engine, clock=clock, actor=SECRETARIAT)
    text = fresh_text(msp_text)
    wf = parse_workflow(text, "fresh")
    app.partnerships.create(
        name="Loop", slug="loop", workflow=wf, definition_text=text, at_step="7"
    )
    record_piece(app, "loop", WALK[1]["partner-identified"])
    return app


def later(clock: ManualClock, days: int = 1) -> None:
    clock.advance(timedelta(days=days))


def unmet(app: Mspflow) -> dict[str, str]:
    return {c.criterion: c.detail for c in app.partnerships.show(partnership="loop").unmet_criteria}


def record(app: Mspflow, what: str, **values: object) -> None:
    app.evidence.record(partnership="loop", kind=what, values=values)


def test_a_second_pass_round_the_loop_needs_fresh_records(app: Mspflow, clock: ManualClock) -> None:
    record(app, "meeting", minutes="first pass")
    record(app, "health-check", summary="fine")
    later(clock)
    app.partnerships.advance(partnership="loop")  # 7 -> 8
    record(app, "monitoring", kind="progress", summary="on plan")
    record(app, "monitoring", kind="process", summary="on plan")
    record(app, "report", period="Q1")
    later(clock)
    app.partnerships.advance(partnership="loop")  # 8 -> 9
    record_piece(app, "loop", WALK[9]["panel-complete"])
    record(app, "review", kind="progress", findings="on track", on_track=True)
    record(app, "review", kind="process", findings="working well")
    # on track: back to delivery, the second pass round the loop
    app.partnerships.move(partnership="loop", kind="advance", dest="7")
    later(clock)
    with pytest.raises(GateNotMet) as refused:
        app.partnerships.advance(partnership="loop")
    assert {u.criterion for u in refused.value.unmet} == {"meetings-held", "health-checked"}
    stale = unmet(app)
    assert "0 of 1 meeting (with_minutes=True) recorded since" in stale["meetings-held"]
    assert "(this visit of the step); 1 recorded in all, the last on" in stale["meetings-held"]
    assert "health check last" not in stale["health-checked"]
    shown = {c.criterion: c for c in app.partnerships.show(partnership="loop").criteria}
    assert (shown["meetings-held"].since, shown["meetings-held"].within) == ("visit", None)
    record(app, "meeting", minutes="second pass")
    assert set(unmet(app)) == {"health-checked"}
    record(app, "health-check", summary="still fine")
    app.partnerships.advance(partnership="loop")  # fresh records: through to 8
    assert set(unmet(app)) == {"report-issued"}  # the first pass's report is stale
    assert "(this pass round the loop)" in unmet(app)["report-issued"]
    record(app, "report", period="Q2")
    app.partnerships.advance(partnership="loop")


def test_since_cycle_counts_the_whole_pass_and_since_visit_only_this_visit(
    app: Mspflow, clock: ManualClock
) -> None:
    """A report recorded while delivering (step 7) counts for step 8's gate in the same
    pass (``since: cycle``), where ``since: visit`` would want one made in step 8."""
    record(app, "meeting", minutes="m")
    record(app, "health-check", summary="h")
    record(app, "report", period="Q1")  # early, in step 7 of this pass
    later(clock)
    app.partnerships.advance(partnership="loop")  # 7 -> 8, the same pass
    record(app, "monitoring", kind="progress", summary="on plan")
    record(app, "monitoring", kind="process", summary="on plan")
    assert unmet(app) == {}


def test_within_counts_back_from_the_clock(app: Mspflow, clock: ManualClock) -> None:
    record(app, "meeting", minutes="m")
    record(app, "health-check", summary="h")
    app.partnerships.advance(partnership="loop")  # 7 -> 8
    record(app, "monitoring", kind="progress", summary="on plan")
    assert "progress-monitored" not in unmet(app)
    later(clock, 31)
    assert "within P30D" in unmet(app)["progress-monitored"]
    record(app, "monitoring", kind="progress", summary="again")
    assert "progress-monitored" not in unmet(app)


def test_a_passed_gate_keeps_the_window_it_judged_in_the_history(
    app: Mspflow, clock: ManualClock
) -> None:
    record(app, "meeting", minutes="m")
    record(app, "health-check", summary="h")
    app.partnerships.advance(partnership="loop")
    move = app.partnerships.history(partnership="loop").events[-1]
    assert move.evidence["health-checked"]["since"].endswith("Z")
    assert "since" in move.evidence["meetings-held"]


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("since: always", "since 'always' is not one of: visit, cycle"),
        ("within: 3 months", "is not an ISO 8601 duration"),
        ("within: P0D", "a duration of nothing"),
    ],
)
def test_the_validator_checks_the_new_keys(msp_text: str, rule: str, says: str) -> None:
    text = msp_text.replace(
        "      - id: meetings-held\n", f"      - id: meetings-held\n        {rule}\n"
    )
    with pytest.raises(DefinitionError) as info:
        parse_workflow(text, "bad")
    assert any(says in line for line in info.value.lines()), info.value.lines()


def test_since_cycle_needs_a_cycle_start_and_freshness_a_check_that_reads_dates(
    msp_text: str,
) -> None:
    cycle = msp_text.replace(
        "      - id: meetings-held\n", "      - id: meetings-held\n        since: cycle\n"
    )
    with pytest.raises(DefinitionError, match="needs the workflow's 'cycle_start'"):
        parse_workflow(cycle, "bad")
    panel = msp_text.replace(
        "      - id: panel-complete\n", "      - id: panel-complete\n        since: visit\n"
    )
    with pytest.raises(DefinitionError, match="'since' applies to the checks"):
        parse_workflow(panel, "bad")


def test_durations() -> None:
    from mspflow.definition.freshness import parse_duration

    at = datetime(2027, 5, 31, 9, tzinfo=timezone.utc)
    assert parse_duration("P3M").before(at) == datetime(2027, 2, 28, 9, tzinfo=timezone.utc)
    assert parse_duration("P1Y").before(at) == datetime(2026, 5, 31, 9, tzinfo=timezone.utc)
    assert parse_duration("P2W").before(at) == at - timedelta(weeks=2)
    assert parse_duration("PT12H").before(at) == at - timedelta(hours=12)
    for bad in ("P", "PT", "3M", "P1H", "P-1D", "P1.5D"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("check", "params", "kind", "values"),
    [
        ("fields_recorded", {"record": "profile", "fields": ["challenge"]}, "profile",
         {"challenge": "Unsafe water"}),
        ("each_partner_has", {"record": "signature"}, "signature",
         {"partner": "Ministry of Rural Development"}),
        ("attested", {}, "attestation", {"task": "7.3", "note": "done"}),
    ],
)  # fmt: skip
def test_every_check_that_reads_dates_honours_freshness(
    app: Mspflow, clock: ManualClock, check: str, params: dict[str, object], kind: str,
    values: dict[str, object],
) -> None:  # fmt: skip
    from types import MappingProxyType

    from mspflow.definition.model import Criterion
    from mspflow.gates import GateContext, evaluate
    from mspflow.store import read_session
    from mspflow.store.lookup import find

    for name in ("Village Water Network", "Mekong Pumps Ltd"):
        app.evidence.update_partner(partnership="loop", partner=name, values={"active": False})
    criterion = Criterion("c", "7.3", "t", check, MappingProxyType(params), since="visit")

    def judged() -> bool:
        with read_session(app.ctx.engine) as s:
            p = find(s, "loop")
            return evaluate(GateContext(s, p, now=clock.now()), criterion).ok

    record(app, kind, **values)  # before this visit began
    later(clock)
    record(app, "meeting", minutes="m")
    record(app, "health-check", summary="h")
    app.partnerships.advance(partnership="loop")  # a new visit (of step 8)
    assert not judged()
    later(clock)
    record(app, kind, **values)
    assert judged()
