"""What the services return: frozen, typed read models that any front door can show.

Each model's :meth:`ReadModel.to_json` gives the stable JSON of the command
line's ``--json`` (README, "--json keys"): add keys freely, never rename or
remove one. Some fields help a front door present the model (the label of a
step, the task of a waived criterion) and are left out of the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, ClassVar

__all__ = [
    "BackfillResult",
    "CriterionView",
    "DebtRow",
    "EventView",
    "Exported",
    "FiredView",
    "HistoryView",
    "ImportResult",
    "IndicatorProgress",
    "Member",
    "MigrateResult",
    "MilestoneView",
    "ModuleRef",
    "MoveOption",
    "MoveResult",
    "NotificationView",
    "PartnerView",
    "PartnershipDetail",
    "PartnershipView",
    "ReadModel",
    "RecordResult",
    "ScaleUpResult",
    "ScheduleItem",
    "ScheduleStatus",
    "ScheduleView",
    "StepRef",
    "UserView",
    "WaiveResult",
    "WorkflowRef",
    "as_list",
    "iso",
]


def iso(instant: datetime | None) -> str | None:
    """The one way instants are written out: UTC, ISO 8601, ``Z``."""
    if instant is None:
        return None
    from datetime import timezone

    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, ReadModel):
        return value.to_json()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class ReadModel:
    """A frozen dataclass with a stable JSON form."""

    #: Fields whose JSON key is not the field's name (``from_state`` -> ``from``).
    _json_names: ClassVar[Mapping[str, str]] = {}
    #: Fields that help presentation and stay out of the JSON.
    _hidden: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name in self._hidden:
                continue
            out[self._json_names.get(f.name, f.name)] = _plain(getattr(self, f.name))
        return out


# --------------------------------------------------------------------------- partnerships


@dataclass(frozen=True)
class WorkflowRef(ReadModel):
    name: str
    version: str
    hash: str


@dataclass(frozen=True)
class StepRef(ReadModel):
    number: int
    id: str
    name: str


@dataclass(frozen=True)
class ModuleRef(ReadModel):
    id: str
    name: str


@dataclass(frozen=True)
class PartnershipView(ReadModel):
    """A partnership as the portfolio lists it."""

    id: str
    name: str
    workflow: WorkflowRef
    state: str
    step: StepRef | None
    module: ModuleRef | None
    status: str  # active | closed
    final_state: str | None
    version: int
    timezone: str
    parent: str | None
    gate_debt_open: int


@dataclass(frozen=True)
class CriterionView(ReadModel):
    """One criterion of the current step's exit gate, and what would satisfy it."""

    criterion: str
    task: str
    title: str
    state: str  # met | waived | unmet
    detail: str
    fix: str
    waived_by: str | None
    #: How recent its evidence must be: since the ``visit`` or the ``cycle`` began,
    #: and within an ISO 8601 duration; None: any record ever made counts.
    since: str | None = None
    within: str | None = None


@dataclass(frozen=True)
class MoveOption(ReadModel):
    """A move the definition offers from the current step."""

    kind: str
    to: str
    label: str
    outcome: str | None
    gate: list[str]
    reason_required: bool


@dataclass(frozen=True)
class PartnerView(ReadModel):
    id: int
    name: str
    sector: str
    contact: str | None
    email: str | None
    can_decide: bool
    active: bool
    role: str | None = None


@dataclass(frozen=True)
class IndicatorProgress(ReadModel):
    """An SDG indicator a partnership tracks (task 9.1) and how far it has come."""

    code: str
    title: str
    unit: str | None
    baseline: float
    target: float
    latest: float | None
    measured_on: date | None
    values: int
    #: Share of the way from baseline to target covered by the latest value
    #: (0.0 at the baseline, 1.0 at the target; below 0 or above 1 past either).
    progress: float | None


@dataclass(frozen=True)
class MilestoneView(ReadModel):
    """A milestone (task 8.1): its deadline, when it was reached, and whether it is late."""

    id: int
    name: str
    due: date
    done: date | None
    delay: str | None
    overdue: bool


@dataclass(frozen=True)
class PartnershipDetail(PartnershipView):
    """A partnership with its exit gate, its possible moves and its partners."""

    criteria: list[CriterionView] = field(default_factory=list)
    unmet_criteria: list[CriterionView] = field(default_factory=list)
    moves: list[MoveOption] = field(default_factory=list)
    partners: list[PartnerView] = field(default_factory=list)
    indicators: list[IndicatorProgress] = field(default_factory=list)
    milestones: list[MilestoneView] = field(default_factory=list)


@dataclass(frozen=True)
class MoveResult(ReadModel):
    """A move that was made: the partnership as it is now, the event, what was waived."""

    partnership: PartnershipView
    event: int
    waived: list[str]
    source: str = ""
    dest: str = ""
    kind: str = ""
    _hidden: ClassVar[frozenset[str]] = frozenset({"source", "dest", "kind"})

    def to_json(self) -> dict[str, Any]:
        return {**self.partnership.to_json(), "event": self.event, "waived": list(self.waived)}


@dataclass(frozen=True)
class WaiveResult(ReadModel):
    id: str
    criterion: str
    event: int


@dataclass(frozen=True)
class BackfillResult(ReadModel):
    settled: list[str]
    open: list[str]


@dataclass(frozen=True)
class ScaleUpResult(ReadModel):
    id: str
    decision: int
    replica: str | None
    dimensions: list[str] = field(default_factory=list)
    _hidden: ClassVar[frozenset[str]] = frozenset({"dimensions"})


@dataclass(frozen=True)
class DebtRow(ReadModel):
    step: int
    criterion: str
    task: str
    status: str  # open | backfilled | waived
    event: int | None


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class EventView(ReadModel):
    """One event of the hash-chained history."""

    seq: int
    partnership: str
    at: str
    actor: str
    role: str
    kind: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    reason: str | None
    waived: list[str]
    evidence: dict[str, Any]
    definition: str
    data: dict[str, Any]
    prev_hash: str
    hash: str
    #: For people: the labels of the states it names ("7 Delivering on the SDGs")
    #: and the task of each criterion of the step it left; not part of the JSON.
    labels: Mapping[str, str] = field(default_factory=dict)
    tasks: Mapping[str, str] = field(default_factory=dict)
    _json_names: ClassVar[Mapping[str, str]] = {"from_state": "from", "to_state": "to"}
    _hidden: ClassVar[frozenset[str]] = frozenset({"labels", "tasks"})

    def label(self, state: str | None) -> str:
        if state is None:
            return "-"
        return self.labels.get(state, state)

    @property
    def from_label(self) -> str:
        return self.label(self.from_state)

    @property
    def to_label(self) -> str:
        return self.label(self.to_state)


@dataclass(frozen=True)
class HistoryView(ReadModel):
    """A partnership's history, oldest first."""

    partnership: PartnershipView
    events: list[EventView]

    def to_json(self) -> dict[str, Any]:  # the command line prints the list of events
        return {"partnership": self.partnership.to_json(), "events": _plain(self.events)}


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class RecordResult(ReadModel):
    id: str
    kind: str
    record: int | None
    #: What the recorder should know though nothing was wrong (a cadence not suggested).
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult(ReadModel):
    partnership: str
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return dict(self.counts)


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ScheduleView(ReadModel):
    id: int
    kind: str
    cadence: str
    starts_on: str
    local_time: str
    timezone: str
    lead_days: list[int]
    grace_days: int
    active: bool
    next: str | None
    recorded_by: str
    error: str | None


@dataclass(frozen=True)
class ScheduleItem(ReadModel):
    """An occurrence that is upcoming, due (awaiting its record), overdue or failed."""

    partnership: str
    schedule: str
    schedule_id: int
    task: str
    occurrence: datetime
    status: str  # upcoming | due | overdue | failed
    record: str | None
    deadline: datetime | None
    flagged: bool = False
    error: str | None = None


@dataclass(frozen=True)
class ScheduleStatus(ReadModel):
    now: datetime
    items: list[ScheduleItem]
    counts: dict[str, int]
    #: For the portfolio: partnerships per state and open overdue flags per partnership.
    portfolio: dict[str, Any] | None = None
    days: int = 30
    _hidden: ClassVar[frozenset[str]] = frozenset({"days"})

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.portfolio is None:
            del out["portfolio"]
        return out


@dataclass(frozen=True)
class FiredView(ReadModel):
    id: int
    partnership: str
    purpose: str
    outcome: str
    occurrence: str
    due_at: str
    fired_at: str
    late: bool
    resolved_at: str | None
    detail: Any
    error: str | None


@dataclass(frozen=True)
class NotificationView(ReadModel):
    id: int
    channel: str
    recipient: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    sent_at: str | None


# --------------------------------------------------------------------------- users, access


@dataclass(frozen=True)
class UserView(ReadModel):
    name: str
    role: str
    email: str | None


@dataclass(frozen=True)
class Member(ReadModel):
    """A user who belongs to a partnership: a partner's contact or an assigned
    secretariat member."""

    partnership: str
    user: str
    role: str
    partner: str | None
    added_by: str
    added_at: str


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class Exported(ReadModel):
    format: str
    path: str
    cases: int
    events: int
    objects: dict[str, int]


def as_list(models: Sequence[ReadModel]) -> list[dict[str, Any]]:
    return [m.to_json() for m in models]


@dataclass(frozen=True)
class MigrateResult(ReadModel):
    """A partnership moved (or, in a dry run, to be moved) to another version of its
    definition."""

    id: str
    state: str
    from_version: str
    to_version: str
    dry_run: bool
    #: False when it already ran on that exact definition (nothing to do).
    changed: bool
    event: int | None
    #: Criteria of the current step that the new version judges unmet or stale and
    #: the old one did not (or did not have).
    unmet: list[CriterionView] = field(default_factory=list)
    #: Open gate debt for criteria the new version no longer has ("step:criterion").
    retired_debt: list[str] = field(default_factory=list)
