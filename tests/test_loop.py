"""The bundled workflow's implementation loop and its re-entry paths (guideline lines
in each test's docstring).

One partnership goes twice round 7 -> 8 -> 9 -> 10 -> 7: the second pass is refused
at every gate until records of that pass exist, and ``show`` says which records
are stale and since when new ones are needed. Then each path back into the
framework, each refused with a clear message while its condition is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from click.testing import Result

from mspflow.clock import ManualClock
from mspflow.definition import Workflow
from mspflow.errors import GateNotMet
from mspflow.services import Mspflow
from mspflow.walk import WALK, record_piece, record_step

LOOP = (7, 8, 9, 10)


def later(clock: ManualClock, days: int = 1) -> None:
    clock.advance(timedelta(days=days))


def stale(app: Mspflow, ref: str) -> dict[str, str]:
    return {c.criterion: c.detail for c in app.partnerships.show(partnership=ref).unmet_criteria}


def at_seven(app: Mspflow, ref: str = "loop") -> str:
    """A partnership onboarded at step 7, with the partners and panel the loop reads."""
    app.partnerships.create(name="Loop", slug=ref, at_step="7")
    record_piece(app, ref, WALK[1]["partner-identified"])
    return ref


def one_pass(app: Mspflow, clock: ManualClock, ref: str, *, refused: list[set[str]]) -> None:
    """7 -> 8 -> 9 -> 10 -> 7; at each gate first try without this pass's records."""
    for step in LOOP:
        later(clock)
        to = "7" if step == 10 else None
        try:
            app.partnerships.advance(partnership=ref, to=to)
            refused.append(set())
        except GateNotMet as exc:
            refused.append({u.criterion for u in exc.unmet})
        else:
            continue
        tracked = bool(app.partnerships.show(partnership=ref).indicators)
        for criterion, piece in WALK[step].items():  # what the gate asked for, and only that
            if criterion in refused[-1]:  # (the indicator is tracked once, measured each pass)
                record_piece(app, ref, [r for r in piece if not (tracked and r[0] == "indicator")])
        app.partnerships.advance(partnership=ref, to=to)


def test_a_second_pass_is_refused_at_each_gate_until_fresh_records_exist(
    service: Mspflow, clock: ManualClock
) -> None:
    """Meetings, plans and health checks (1039, 1050, 1073), monitoring and reports
    (1096-1100, 1130), reviews (1195-1196, 1220) and revisions (1232) recur each pass."""
    ref = at_seven(service)
    first: list[set[str]] = []
    one_pass(service, clock, ref, refused=first)
    assert all(first), first  # nothing recorded yet: every gate refused
    assert service.partnerships.get(partnership=ref).step.number == 7  # type: ignore[union-attr]

    # The second pass: the first pass's records are all there, and none counts.
    later(clock, 30)
    shown = stale(service, ref)
    assert set(shown) == {"meetings-held", "action-plan-current", "health-checked"}
    detail = shown["meetings-held"]
    assert "0 of 1 meeting (with_minutes=True) recorded since" in detail
    assert "(this pass round the loop); 1 recorded in all, the last on" in detail
    second: list[set[str]] = []
    one_pass(service, clock, ref, refused=second)
    assert second == [
        {"meetings-held", "action-plan-current", "health-checked"},
        {"progress-monitored", "process-monitored", "report-issued"},  # milestones stay
        {"impact-measured", "progress-reviewed", "process-reviewed"},  # panel, indicator stay
        {"revisions-recorded"},
    ]


def test_monitoring_back_to_delivery_continues_the_pass(
    service: Mspflow, clock: ManualClock
) -> None:
    """8 -> 7 (monitoring runs alongside delivery, 1095-1098) starts no new pass."""
    ref = at_seven(service)
    record_step(service, ref, 7)
    later(clock)
    service.partnerships.advance(partnership=ref)
    later(clock)
    service.partnerships.revisit(partnership=ref, step="7", reason="more delivery first")
    assert stale(service, ref) == {}  # this pass's meeting, plan and health check still count
    later(clock)
    service.partnerships.advance(partnership=ref)


# --------------------------------------------------------------------------- CLI paths


@pytest.fixture
def run(cli: Callable[..., Result], tmp_path: object) -> Callable[..., Result]:
    db = f"sqlite:///{tmp_path}/paths.db"
    assert cli("--db", db, "init", "--admin", "ana").exit_code == 0

    def go(*args: str, code: int = 0) -> Result:
        result = cli("--db", db, "--as", "ana", *args)
        assert result.exit_code == code, result.output
        if code:
            assert len(result.output.strip().splitlines()) >= 1
        return result

    return go


def put(run: Callable[..., Result], step: int, ref: str = "p", skip: str | None = None) -> None:
    from tests.test_walk_cli import P, argv

    for criterion, records in WALK[step].items():
        if criterion != skip:
            for kind, values in records:
                run(*[ref if a == P else a for a in argv(kind, values)])


def test_revisit_any_earlier_step_of_a_and_b_with_a_reason(run: Callable[..., Result]) -> None:
    """Line 303: earlier steps are revisited as information, resources or stakeholders change."""
    run("partnership", "create", "Paths", "--id", "p", "--at-step", "9")
    out = run("revisit", "p", "5", code=2).output  # no reason
    assert "--reason" in out
    out = run("revisit", "p", "8", "--reason", "why", code=7).output
    assert "cannot revisit from 9 Reviewing to '8'" in out
    assert "possible: 1, 2, 3, 4, 5, 6" in out
    run("revisit", "p", "6", "--reason", "a new donor committed resources")
    assert '"state": "mobilizing"' in run("partnership", "show", "p", "--json").output


def test_from_measuring_progress_back_to_delivery(run: Callable[..., Result]) -> None:
    """Lines 1095-1098: monitoring runs alongside delivery."""
    run("partnership", "create", "Paths", "--id", "p", "--at-step", "8")
    assert "--reason" in run("revisit", "p", "7", code=2).output
    out = run("revisit", "p", "9", "--reason", "r", code=7).output
    assert "cannot revisit from 8 Measuring progress to '9'" in out
    run("revisit", "p", "7", "--reason", "the pumps arrived; back to installing them")
    assert '"state": "delivering"' in run("partnership", "show", "p", "--json").output


def test_lessons_without_a_revision_lead_to_scaling_up(run: Callable[..., Result]) -> None:
    """Lines 1317-1319: the decision to go to scale rests on documented lessons."""
    run("partnership", "create", "Paths", "--id", "p", "--at-step", "10")
    out = run("advance", "p", "--to", "11", code=3).output
    assert "lessons-documented" in out and "revisions-recorded" not in out
    run("record", "lesson", "p", "Village committees sustain the pumps")
    run("advance", "p", "--to", "11")
    # ... whereas going back to delivery needs the revision
    assert "revisit" not in run("partnership", "show", "p").output.lower()


def test_a_decision_not_to_scale_up_leads_to_moving_on(run: Callable[..., Result]) -> None:
    """Line 1319: the partners may decide to scale up, and so may decide not to."""
    run("partnership", "create", "Paths", "--id", "p", "--at-step", "11")
    out = run("advance", "p", code=3).output
    assert "scale-up-decided" in out
    out = run("scale-up", "p", "--decline", "--dimension", "social", "--description", "x", code=7)
    assert "names no dimension" in out.output
    out = run("scale-up", "p", "--description", "more provinces", code=7).output
    assert "or decide not to scale up" in out and "[--dimension]" in out
    run("scale-up", "p", "--decline", "--description", "The work ends with the time frame")
    run("advance", "p")
    assert '"state": "moving-on"' in run("partnership", "show", "p", "--json").output
    history = run("history", "p", "--json").output
    assert '"declined": true' in history


def test_a_replica_needs_the_physical_dimension(run: Callable[..., Result]) -> None:
    """Line 1322: replicating the partnership elsewhere is its physical scaling up."""
    run("partnership", "create", "Paths", "--id", "p", "--at-step", "11")
    args = ["scale-up", "p", "--dimension", "political", "--description", "d", "--replicate"]
    out = run(*args, "Copy", code=7).output
    assert "the physical dimension" in out and "[--replicate]" in out
    run("scale-up", "p", "--dimension", "physical", "--description", "d", "--replicate", "Copy")
    assert "copy" in run("partnership", "list").output


def test_renewal_with_new_goals_re_enters_at_agenda_setting(run: Callable[..., Result]) -> None:
    """Line 1358: a renewal may change the goals or objectives, which step 2 sets."""
    run("partnership", "create", "Paths", "--id", "p", "--at-step", "12")
    run("record", "lesson", "p", "Scope the next phase with the province")
    out = run("conclude", "p", "--outcome", "renewal-new-goals", "--json").output
    assert '"state": "agenda-setting-and-scoping"' in out


def test_resuming_delivery_needs_an_on_track_finding(run: Callable[..., Result]) -> None:
    """Lines 1151, 1195: the review brings the partnership back on track, or it revises."""
    for ref in ("behind", "on-track"):
        run("partnership", "create", ref, "--id", ref, "--at-step", "9")
        put(run, 1, ref=ref)  # partners
        put(run, 9, ref=ref)  # the progress review finds it behind
        out = run("advance", ref, "--to", "7", code=3).output
        assert "found-on-track" in out and "1 criterion(s) unmet" in out
    run("advance", "behind")  # behind schedule: on to revising
    assert '"state": "revising"' in run("partnership", "show", "behind", "--json").output
    run("record", "review", "on-track", "--kind", "progress", "--findings", "caught up",
        "--on-track")  # fmt: skip
    run("advance", "on-track", "--to", "7")
    assert '"state": "delivering"' in run("partnership", "show", "on-track", "--json").output


def test_a_partner_without_a_contact_does_not_identify_it(run: Callable[..., Result]) -> None:
    """Lines 609, 613: a potential partner is identified with a contact who can decide."""
    run("partnership", "create", "Paths", "--id", "p")
    put(run, 1, skip="partner-identified")
    run("partner", "add", "p", "Anon Org", "--sector", "private", "--can-decide")
    assert "partner-identified" in run("advance", "p", code=3).output
    run("partner", "update", "p", "Anon Org", "--contact", "Dara")
    run("advance", "p")


# --------------------------------------------------------------------------- services


def test_a_lesson_inherited_by_a_replica_is_shown_not_counted(
    service: Mspflow, msp: Workflow
) -> None:
    """Lessons for 10.2 and 12.1 are the partnership's own (1245, 1395); a replica
    holds its parent's (11.1) without counting them."""
    from mspflow.gates import GateContext, evaluate
    from mspflow.store import read_session
    from mspflow.store.lookup import find

    ps = service.partnerships
    ps.create(name="Parent", slug="parent", at_step="11")
    service.evidence.record(partnership="parent", kind="lesson", values={"text": "Parent's"})
    ps.scale_up(partnership="parent", dimensions=["physical"], description="d", replica="Child")
    criterion = msp.step(12).criterion("lessons-kept")
    assert criterion is not None

    def counted(ref: str) -> bool:
        with read_session(service.ctx.engine) as s:
            return evaluate(GateContext(s, find(s, ref)), criterion).ok

    assert counted("parent") and not counted("child")
    service.evidence.record(partnership="child", kind="lesson", values={"text": "Child's own"})
    assert counted("child")
