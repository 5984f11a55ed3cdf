"""The loaded form of a workflow definition: frozen dataclasses, never dicts.

A :class:`Workflow` is what the framework says (steps, tasks, gates, paths,
cadences); it knows nothing of any partnership. The runtime pins a partnership to
one workflow by name, version and :attr:`Workflow.content_hash`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "CADENCE_DAYS",
    "TRIGGER_KINDS",
    "AutoTrigger",
    "Criterion",
    "FinalState",
    "Module",
    "Outcome",
    "ScheduleKind",
    "Step",
    "Task",
    "Transition",
    "Workflow",
]

#: Cadences a schedule may use, with their nominal period in days. The period
#: orders cadences from most to least frequent; it is not used to compute dates
#: (the scheduler uses calendar arithmetic for that).
CADENCE_DAYS: Mapping[str, float] = MappingProxyType(
    {
        "daily": 1,
        "weekly": 7,
        "every-two-weeks": 14,
        "twice-monthly": 365.25 / 24,
        "monthly": 365.25 / 12,
        "quarterly": 365.25 / 4,
        "half-yearly": 365.25 / 2,
        "yearly": 365.25,
        "once": float("inf"),
    }
)

#: The kinds of transition the engine knows. ``advance`` moves forward (or on
#: round the implementation loop) through a gate; ``revisit`` goes back with a
#: reason; ``conclude`` takes a step-12 outcome; ``review-due`` is fired by the
#: scheduler only.
TRIGGER_KINDS = ("advance", "revisit", "conclude", "review-due")


@dataclass(frozen=True)
class Task:
    id: str
    name: str
    step: int
    description: str = ""
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)


@dataclass(frozen=True)
class Criterion:
    """One exit-gate criterion: evidenced by a built-in check or an attestation."""

    id: str
    task: str
    title: str
    check: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    fix: str = ""
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)
    #: How recent its evidence must be (:mod:`mspflow.definition.freshness`):
    #: ``visit``, ``cycle`` or None (ever), and at most this old (ISO 8601) or None.
    since: str | None = None
    within: str | None = None

    @property
    def fresh(self) -> bool:
        """Whether its evidence must be recent (else any record ever made counts)."""
        return self.since is not None or self.within is not None


@dataclass(frozen=True)
class Step:
    number: int
    id: str
    name: str
    module: str
    description: str
    tasks: tuple[Task, ...]
    gate: tuple[Criterion, ...]
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)

    def criterion(self, criterion_id: str) -> Criterion | None:
        return next((c for c in self.gate if c.id == criterion_id), None)


@dataclass(frozen=True)
class FinalState:
    id: str
    name: str
    description: str = ""
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)


@dataclass(frozen=True)
class Module:
    id: str
    name: str
    description: str
    steps: tuple[int, ...]
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)


@dataclass(frozen=True)
class Transition:
    """One allowed move ``source`` → ``dest``.

    ``gate`` names the criteria (of the source step) that must pass or be
    waived; an empty tuple means the move is not gated.
    """

    kind: str
    source: str
    dest: str
    gate: tuple[str, ...]
    reason_required: bool
    task: str
    label: str = ""
    outcome: str | None = None
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)

    @property
    def trigger(self) -> str:
        """The event name on the shared state machine (unique per kind and destination)."""
        suffix = f"__{self.outcome}" if self.outcome else ""
        return f"{self.kind.replace('-', '_')}__{self.dest.replace('-', '_')}{suffix}"


@dataclass(frozen=True)
class Outcome:
    """A step-12 outcome (task 12.1): where it leads and which reasons it accepts."""

    id: str
    name: str
    dest: str
    final: bool
    reasons: tuple[str, ...]
    description: str = ""
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)


@dataclass(frozen=True)
class ScheduleKind:
    id: str
    name: str
    task: str
    cadences: tuple[str, ...]
    default: str
    minimum: str | None
    record: str | None
    derived: str | None = None
    description: str = ""
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)


@dataclass(frozen=True)
class AutoTrigger:
    """A move the scheduler makes on its own when a schedule falls due."""

    id: str
    kind: str
    sources: tuple[str, ...]
    dest: str
    schedules: tuple[str, ...]
    task: str
    line: int = 0
    cites: str = ""  # the guideline's lines it rests on (``source:``)


@dataclass(frozen=True)
class Workflow:
    name: str
    version: str
    title: str
    description: str
    initial: str
    modules: tuple[Module, ...]
    steps: tuple[Step, ...]
    final_states: tuple[FinalState, ...]
    transitions: tuple[Transition, ...]
    outcomes: tuple[Outcome, ...]
    schedule_kinds: tuple[ScheduleKind, ...]
    auto_triggers: tuple[AutoTrigger, ...]
    entry_steps: tuple[str, ...]
    scale_up_entry: tuple[str, ...]
    content_hash: str
    source: str
    #: The step a pass round the implementation loop starts at (``since: cycle``).
    cycle_start: str | None = None

    # --- look-ups -----------------------------------------------------------
    @property
    def states(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.steps) + tuple(f.id for f in self.final_states)

    def step(self, ref: str | int) -> Step:
        """A step by id or number; ``KeyError`` if there is none."""
        for s in self.steps:
            if s.id == ref or str(s.number) == str(ref):
                return s
        raise KeyError(ref)

    def find_step(self, ref: str | int) -> Step | None:
        try:
            return self.step(ref)
        except KeyError:
            return None

    def is_final(self, state: str) -> bool:
        return any(f.id == state for f in self.final_states)

    def final_state(self, state: str) -> FinalState:
        return next(f for f in self.final_states if f.id == state)

    def module_of(self, step: Step) -> Module:
        return next(m for m in self.modules if m.id == step.module)

    def task(self, task_id: str) -> Task | None:
        return next((t for s in self.steps for t in s.tasks if t.id == task_id), None)

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(t for s in self.steps for t in s.tasks)

    def transitions_from(self, state: str, kind: str | None = None) -> tuple[Transition, ...]:
        return tuple(
            t for t in self.transitions if t.source == state and (kind is None or t.kind == kind)
        )

    def outcome(self, outcome_id: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.id == outcome_id), None)

    def schedule_kind(self, kind_id: str) -> ScheduleKind | None:
        return next((k for k in self.schedule_kinds if k.id == kind_id), None)

    @property
    def within_pass(self) -> tuple[str, ...]:
        """The other steps of the module the loop starts in: moving from one of them back
        into ``cycle_start`` (from monitoring to delivery) continues the pass."""
        if self.cycle_start is None:
            return ()
        module = self.step(self.cycle_start).module
        return tuple(s.id for s in self.steps if s.module == module and s.id != self.cycle_start)

    def label(self, state: str) -> str:
        """``"7 Delivering on the SDGs"`` for a step, the name for a final state."""
        step = self.find_step(state)
        if step is not None:
            return f"{step.number} {step.name}"
        return self.final_state(state).name
