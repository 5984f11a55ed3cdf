"""Every bundled definition loads; msp-12-step encodes the guideline as FRAMEWORK.md maps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mspflow.definition import Workflow, find_workflow, load_workflow
from mspflow.definition.loader import source_lines
from tests.conftest import BUNDLED

#: The guideline's text as the ``source`` line numbers count it (the reference corpus
#: beside a checkout; not part of the project) and its length in lines.
GUIDELINE = Path(__file__).resolve().parents[3] / "shared/reference/seeds/003_461b1784d6473f35.txt"
GUIDELINE_LINES = 1657

GUIDELINE_TASKS = [
    "1.1", "1.2", "1.3", "1.4",
    "2.1", "2.2", "2.3", "2.4",
    "3.1", "3.2", "3.4", "3.5",
    "4.1", "4.2",
    "5.1", "5.2", "5.3",
    "6.1", "6.2",
    "7.1", "7.2", "7.3", "7.4",
    "8.1", "8.2", "8.3",
    "9.1", "9.2",
    "10.1", "10.2",
    "11.1",
    "12.1",
]  # fmt: skip


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_definition_loads(path: Path) -> None:
    wf = load_workflow(path)
    assert wf.steps and wf.final_states
    for step in wf.steps:
        for criterion in step.gate:
            assert wf.task(criterion.task) is not None, criterion


@pytest.fixture(scope="module")
def msp() -> Workflow:
    return find_workflow("msp-12-step")


def test_structure_matches_guideline(msp: Workflow) -> None:
    assert [m.id for m in msp.modules] == ["A", "B", "C", "D", "E"]
    assert [s.number for s in msp.steps] == list(range(1, 13))
    assert [m.steps for m in msp.modules] == [(1, 2, 3), (4, 5, 6), (7, 8), (9, 10), (11, 12)]
    assert [t.id for t in msp.tasks] == GUIDELINE_TASKS
    assert msp.task("3.3") is None  # the guideline has no task 3.3


def _moves(msp: Workflow, kind: str) -> set[tuple[int, int | str]]:
    def num(state: str) -> int | str:
        step = msp.find_step(state)
        return step.number if step else state

    return {(int(num(t.source)), num(t.dest)) for t in msp.transitions if t.kind == kind}


def test_non_linear_paths(msp: Workflow) -> None:
    advance = _moves(msp, "advance")
    assert {(n, n + 1) for n in range(1, 10)} <= advance
    assert {(9, 7), (10, 4), (10, 5), (10, 6), (10, 7), (10, 11), (10, 12), (11, 12)} <= advance
    revisit = _moves(msp, "revisit")
    # Any earlier step of modules A and B from a later step (line 303), and from
    # measuring progress back to delivery (1095-1098).
    earlier = {(n, back) for n in range(2, 13) for back in range(1, 7) if back < n}
    assert revisit == earlier | {(8, 7)}
    assert all(t.reason_required for t in msp.transitions if t.kind == "revisit")
    assert _moves(msp, "review-due") == {(7, 9), (8, 9)}
    assert msp.entry_steps == tuple(s.id for s in msp.steps)
    assert [msp.step(s).number for s in msp.scale_up_entry] == [1, 4]
    assert msp.cycle_start == "delivering"
    assert msp.within_pass == ("measuring-progress",)


def test_gates_on_the_loop(msp: Workflow) -> None:
    by_pair = {(t.source, t.dest): t for t in msp.transitions if t.kind == "advance"}
    # Going to scale rests on the documented lessons, with or without a revision (1317).
    assert by_pair[("revising", "scaling-up")].gate == ("lessons-documented",)
    assert by_pair[("revising", "planning")].gate == ("revisions-recorded",)
    # Only a review that finds the partnership on track resumes delivery; one that
    # finds it behind goes on to revising.
    assert "found-on-track" in by_pair[("reviewing", "delivering")].gate
    assert "found-on-track" not in by_pair[("reviewing", "revising")].gate
    six = msp.step(6)
    assert {c.task for c in six.gate} >= {"7.1", "8.1"}  # schedules before implementation


def test_recurring_records_must_be_fresh(msp: Workflow) -> None:
    fresh = {
        c.id: c.since for s in msp.steps for c in s.gate if s.number in (7, 8, 9, 10) and c.fresh
    }
    assert fresh == {
        "meetings-held": "cycle",
        "action-plan-current": "cycle",
        "health-checked": "cycle",
        "progress-monitored": "cycle",
        "process-monitored": "cycle",
        "report-issued": "cycle",
        "impact-measured": "cycle",
        "progress-reviewed": "visit",
        "process-reviewed": "visit",
        "found-on-track": "visit",
        "revisions-recorded": "visit",
        "lessons-documented": "visit",
    }
    foundational = [c for s in msp.steps if s.number <= 6 for c in s.gate]
    assert not any(c.fresh for c in foundational)


def test_every_criterion_and_transition_cites_the_guideline(msp: Workflow) -> None:
    if GUIDELINE.exists():  # where the text is at hand, the count above is its own
        assert len(GUIDELINE.read_text(encoding="utf-8").splitlines()) == GUIDELINE_LINES
    lines = GUIDELINE_LINES
    cited = [
        *(("module", m.id, m.cites) for m in msp.modules),
        *(("step", str(s.number), s.cites) for s in msp.steps),
        *(("task", t.id, t.cites) for t in msp.tasks),
        *(("criterion", c.id, c.cites) for s in msp.steps for c in s.gate),
        *(("transition", t.trigger + " from " + t.source, t.cites) for t in msp.transitions),
        *(("outcome", o.id, o.cites) for o in msp.outcomes),
        *(("schedule kind", k.id, k.cites) for k in msp.schedule_kinds),
    ]
    missing = [f"{what} {ident}" for what, ident, cites in cited if not cites]
    assert missing == []
    for what, ident, cites in cited:
        found = source_lines(cites)
        assert found is not None, (what, ident)
        assert all(1 <= a <= b <= lines for a, b in found), (what, ident, cites)


def test_outcomes(msp: Workflow) -> None:
    dest = {o.id: o.dest for o in msp.outcomes}
    assert dest == {
        "renewal-same-design": "delivering",
        "renewal-new-goals": "agenda-setting-and-scoping",
        "renewal-new-design": "planning",
        "renewal-new-partners": "building-relationships",
        "transfer": "transferred",
        "transfer-to-institution": "institutionalized",
        "termination": "terminated",
    }
    termination = msp.outcome("termination")
    assert termination is not None and len(termination.reasons) == 6
    assert {o.id for o in msp.outcomes if o.final} == {
        "transfer",
        "transfer-to-institution",
        "termination",
    }


def test_cadences(msp: Workflow) -> None:
    kinds = {k.id: k for k in msp.schedule_kinds}
    # The guideline states a minimum for coordination meetings only (1039-1040).
    assert {k.id: k.minimum for k in msp.schedule_kinds if k.minimum} == {
        "coordination-meeting": "monthly"
    }
    assert kinds["coordination-meeting"].task == "7.1"
    assert "quarterly" not in kinds["coordination-meeting"].cadences
    assert set(kinds["monitoring"].cadences) == {"daily", "every-two-weeks", "monthly"}
    assert set(kinds["review-panel"].cadences) == {"monthly", "quarterly", "half-yearly", "yearly"}
    assert "meeting-records-review" not in kinds  # the panel reviews the minutes (1042)
    assert kinds["midterm-review"].derived == "midterm"
