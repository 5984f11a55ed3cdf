"""Every bundled definition loads; msp-12-step encodes the guideline as FRAMEWORK.md maps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mspflow.definition import Workflow, find_workflow, load_workflow
from tests.conftest import BUNDLED

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
    foundations = {(n, back) for n in range(2, 13) for back in (1, 2, 3) if back < n}
    assert revisit == foundations | {(7, 5)}
    assert all(t.reason_required for t in msp.transitions if t.kind == "revisit")
    assert _moves(msp, "review-due") == {(7, 9), (8, 9)}
    assert msp.entry_steps == tuple(s.id for s in msp.steps)
    assert [msp.step(s).number for s in msp.scale_up_entry] == [1, 4]


def test_gates_on_the_loop(msp: Workflow) -> None:
    by_pair = {(t.source, t.dest): t for t in msp.transitions if t.kind == "advance"}
    assert by_pair[("revising", "scaling-up")].gate == ("revisions-recorded", "lessons-documented")
    assert by_pair[("revising", "planning")].gate == ("revisions-recorded",)
    six = msp.step(6)
    assert {c.task for c in six.gate} >= {"7.1", "8.1"}  # schedules before implementation


def test_outcomes(msp: Workflow) -> None:
    dest = {o.id: o.dest for o in msp.outcomes}
    assert dest == {
        "renewal-same-design": "delivering",
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
    assert kinds["coordination-meeting"].minimum == "monthly"
    assert kinds["coordination-meeting"].task == "7.1"
    assert "quarterly" not in kinds["coordination-meeting"].cadences
    assert set(kinds["monitoring"].cadences) == {"daily", "every-two-weeks", "monthly"}
    assert set(kinds["review-panel"].cadences) == {"monthly", "quarterly", "half-yearly"}
    assert kinds["midterm-review"].derived == "midterm"
