"""Partnership state machines: one shared ``transitions.Machine`` per definition.

A partnership's state lives in the database; for one operation it is attached
to the Machine of its pinned definition (``add_model`` with the stored state),
moved, and detached again. Gate criteria are the Machine's ``conditions``;
``may_<trigger>`` answers whether a move would pass without making it, and
the unmet criteria are then listed one by one.

This module knows the definition and nothing of the database: a criterion is
judged by the ``judge`` function the caller passes in (the gate checks of
:mod:`mspflow.gates`, reading the partnership's evidence).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine

from mspflow.definition.model import Criterion, Step, Transition, Workflow
from mspflow.errors import GateNotMet, UnmetCriterion

__all__ = ["CheckResult", "CriterionStatus", "GateModel", "machine_for", "run_transition"]


@dataclass(frozen=True)
class CheckResult:
    """What one gate check found: whether it holds, what was seen, the evidence."""

    ok: bool
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CriterionStatus:
    criterion: Criterion
    result: CheckResult
    waived_by: str | None = None

    @property
    def passed(self) -> bool:
        return self.result.ok or self.waived_by is not None

    @property
    def state(self) -> str:
        return "met" if self.result.ok else ("waived" if self.waived_by else "unmet")

    def unmet(self) -> UnmetCriterion:
        c = self.criterion
        return UnmetCriterion(c.id, c.task, c.title, self.result.detail, c.fix or "record it")


class _Gate:
    """A Machine condition: the named criteria of the source step pass or are waived."""

    def __init__(self, criteria: Sequence[str]) -> None:
        self.criteria = tuple(criteria)

    def __call__(self, event: Any) -> bool:
        model: GateModel = event.model
        return all(model.status(c).passed for c in self.criteria)


_machines: dict[str, Machine] = {}


def machine_for(wf: Workflow) -> Machine:
    """The one Machine for this definition (keyed by content hash), built once."""
    machine = _machines.get(wf.content_hash)
    if machine is None:
        machine = Machine(
            model=None,
            states=list(wf.states),
            initial=None,
            auto_transitions=False,
            send_event=True,
            model_attribute="state",
        )
        for t in wf.transitions:
            machine.add_transition(t.trigger, t.source, t.dest, conditions=[_Gate(t.gate)])
        _machines[wf.content_hash] = machine
    return machine


class GateModel:
    """What the shared Machine moves: one partnership's state, for one operation.

    Each criterion is judged at most once, when a condition or a caller first
    asks for it.
    """

    state: str

    def __init__(
        self,
        step: Step,
        judge: Callable[[Criterion], CheckResult],
        waivers: Mapping[str, str],
    ) -> None:
        self.step = step
        self.judge = judge
        self.waivers = waivers
        self._cache: dict[str, CriterionStatus] = {}

    def status(self, criterion_id: str) -> CriterionStatus:
        found = self._cache.get(criterion_id)
        if found is None:
            criterion = self.step.criterion(criterion_id)
            assert criterion is not None, criterion_id  # the loader checked the reference
            found = CriterionStatus(
                criterion, self.judge(criterion), self.waivers.get(criterion_id)
            )
            self._cache[criterion_id] = found
        return found

    def gate(self) -> list[CriterionStatus]:
        """Every criterion of the step's exit gate."""
        return [self.status(c.id) for c in self.step.gate]


def run_transition(
    wf: Workflow, model: GateModel, state: str, t: Transition, *, partnership: str
) -> list[CriterionStatus]:
    """Make transition ``t`` on the shared Machine, or raise GateNotMet listing what is
    unmet; returns the statuses of the criteria its gate names."""
    machine = machine_for(wf)
    machine.add_model(model, initial=state)
    try:
        if not getattr(model, f"may_{t.trigger}")():
            unmet = [model.status(c).unmet() for c in t.gate if not model.status(c).passed]
            raise GateNotMet(partnership, wf.label(state), wf.label(t.dest), unmet)
        getattr(model, t.trigger)()
    finally:
        machine.remove_model(model)
    assert model.state == t.dest
    return [model.status(c) for c in t.gate]
