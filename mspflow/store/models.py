"""Database tables (SQLModel).

Three groups:

* **state**: partnerships, the workflow definitions they are pinned to, users;
* **evidence**: what the exit gates read (FRAMEWORK.md section 2), one table per
  kind of record, each row stamped with who recorded it and when;
* **audit**: the append-only, hash-chained history, waivers and gate debt.

History rows are written by :mod:`mspflow.history` only, and never updated or
deleted by any code path.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "SCHEMA_VERSION",
    "Activity",
    "Attestation",
    "Component",
    "ComponentLead",
    "ComponentObjective",
    "DecisionMaking",
    "Evidence",
    "FiredTrigger",
    "GateDebt",
    "Governance",
    "HealthCheck",
    "HistoryEvent",
    "LeadershipAgreement",
    "Lesson",
    "Meeting",
    "MeetingAttendance",
    "Membership",
    "Monitoring",
    "Notification",
    "Objective",
    "OutcomeRecord",
    "OverallLead",
    "PanelMember",
    "Partner",
    "Partnership",
    "Profile",
    "Report",
    "Resource",
    "Review",
    "Revision",
    "Risk",
    "ScaleUpDecision",
    "Schedule",
    "SchemaVersion",
    "Scope",
    "SdgTarget",
    "Signature",
    "SweepState",
    "User",
    "Waiver",
    "WorkflowDefinition",
    "evidence_table",
]

#: The schema this code reads and writes. A database at another version is
#: refused (see :func:`mspflow.store.db.check_schema`).
SCHEMA_VERSION = 8


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int


# --------------------------------------------------------------------------- state


class WorkflowDefinition(SQLModel, table=True):
    """The exact definition text a partnership runs on, kept so that editing the
    file later never changes a running partnership."""

    __tablename__ = "workflow_definition"
    content_hash: str = Field(primary_key=True, max_length=64)
    name: str = Field(index=True)
    version: str
    source_text: str = Field(sa_column=Column(Text, nullable=False))
    stored_at: datetime


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    role: str  # secretariat | partner | auditor
    email: str | None = None
    created_at: datetime


class Membership(SQLModel, table=True):
    """A user who belongs to a partnership: the contact of one of its partner
    organisations (a partner user) or an assigned secretariat member."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("partnership_id", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    added_by: str
    added_at: datetime


class Partnership(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True)
    name: str
    workflow_name: str
    workflow_version: str
    workflow_hash: str = Field(foreign_key="workflow_definition.content_hash")
    state: str = Field(index=True)
    #: Optimistic-concurrency counter: every write to the partnership bumps it.
    version: int = 1
    #: History sequence number of the event that entered the current state.
    entered_seq: int = 0
    timezone: str = "UTC"
    parent_id: int | None = Field(default=None, foreign_key="partnership.id")
    created_at: datetime
    updated_at: datetime


# --------------------------------------------------------------------------- evidence


class Evidence(SQLModel):
    """Columns every evidence row has."""

    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True)
    recorded_by: str
    recorded_at: datetime


class Profile(SQLModel, table=True):
    """Single-row facts of steps 1, 2 and 6 (tasks 1.1-1.3, 2.1, 2.2, 2.4, 6.1)."""

    partnership_id: int = Field(foreign_key="partnership.id", primary_key=True)
    challenge: str | None = None
    lead_organization: str | None = None
    senior_support: str | None = None
    partnering_rationale: str | None = None
    partner_kinds_needed: str | None = None
    problem_definition: str | None = None
    target_population: str | None = None
    baseline_conditions: str | None = None
    shared_goal: str | None = None
    policy_coherence: str | None = None
    indicator_baseline: str | None = None
    implementation_start: date | None = None
    recorded_by: str
    recorded_at: datetime


class Scope(SQLModel, table=True):
    """Task 2.3."""

    partnership_id: int = Field(foreign_key="partnership.id", primary_key=True)
    outputs: str | None = None
    geographic_focus: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    resources_needed: str | None = None
    out_of_scope: str | None = None
    recorded_by: str
    recorded_at: datetime


class Governance(SQLModel, table=True):
    """Task 3.5."""

    partnership_id: int = Field(foreign_key="partnership.id", primary_key=True)
    procedures: str | None = None
    process_baseline: str | None = None
    recorded_by: str
    recorded_at: datetime


class DecisionMaking(SQLModel, table=True):
    """Task 5.3."""

    __tablename__ = "decision_making"
    partnership_id: int = Field(foreign_key="partnership.id", primary_key=True)
    structure: str | None = None
    contingency_process: str | None = None
    recorded_by: str
    recorded_at: datetime


class Partner(Evidence, table=True):
    """Task 1.4 (identified), 2.2 (own objectives), 3.5 (accountable to)."""

    __table_args__ = (UniqueConstraint("partnership_id", "name"),)
    name: str
    sector: str
    contact_name: str | None = None
    contact_email: str | None = None
    can_decide: bool = False
    objectives: str | None = None
    accountable_to: str | None = None
    active: bool = True
    role: str | None = None  # funding | accountable | extending | implementing (IATI)


class SdgTarget(Evidence, table=True):
    """Tasks 1.1 and 2.4: the SDG targets the partnership serves."""

    __tablename__ = "sdg_target"
    __table_args__ = (UniqueConstraint("partnership_id", "code"),)
    code: str


class Objective(Evidence, table=True):
    """Task 2.2."""

    text: str


class Resource(Evidence, table=True):
    """Tasks 3.1 (mapped) and 6.2 (mobilized)."""

    partner_id: int = Field(foreign_key="partner.id", index=True)
    kind: str  # a resource type (RESOURCE_TYPES); in-kind in older records
    description: str
    amount: float | None = None
    currency: str | None = None
    committed: bool = False
    mobilized: bool = False


class Risk(Evidence, table=True):
    """Task 3.2."""

    area: str
    description: str
    mitigation: str | None = None


class RiskReward(Evidence, table=True):
    """Task 3.2: what one partner expects to gain and to risk."""

    __tablename__ = "risk_reward"
    partner_id: int = Field(foreign_key="partner.id", index=True)
    rewards: str
    risks: str


class Signature(Evidence, table=True):
    """Task 3.4: a partner's signature of the partnering agreement."""

    partner_id: int = Field(foreign_key="partner.id", index=True)
    signed_on: date
    document: str | None = None


class Component(Evidence, table=True):
    """Task 4.1."""

    __table_args__ = (UniqueConstraint("partnership_id", "name"),)
    name: str


class ComponentObjective(SQLModel, table=True):
    __tablename__ = "component_objective"
    component_id: int = Field(foreign_key="component.id", primary_key=True)
    objective_id: int = Field(foreign_key="objective.id", primary_key=True)


class ComponentLead(Evidence, table=True):
    """Task 5.2: a component's lead partner (sole, or one of joint leads)."""

    __tablename__ = "component_lead"
    __table_args__ = (UniqueConstraint("component_id", "partner_id"),)
    component_id: int = Field(foreign_key="component.id", index=True)
    partner_id: int = Field(foreign_key="partner.id")
    joint: bool = False


class Activity(Evidence, table=True):
    """Task 4.2: one responsible partner, enforced by a non-null column."""

    component_id: int = Field(foreign_key="component.id", index=True)
    name: str
    responsible_partner_id: int = Field(foreign_key="partner.id")
    start: date | None = None
    end: date | None = None


class OverallLead(Evidence, table=True):
    """Task 5.1: the partner that leads the partnership."""

    __tablename__ = "overall_lead"
    partner_id: int = Field(foreign_key="partner.id")


class LeadershipAgreement(Evidence, table=True):
    """Task 5.1: a partner's agreement to the overall lead."""

    __tablename__ = "leadership_agreement"
    lead_id: int = Field(foreign_key="overall_lead.id", index=True)
    partner_id: int = Field(foreign_key="partner.id")


class Meeting(Evidence, table=True):
    """Task 7.1: a coordination meeting; minutes make it count for the gate."""

    held_on: date
    minutes: str | None = None
    schedule_id: int | None = Field(default=None, foreign_key="schedule.id")


class MeetingAttendance(SQLModel, table=True):
    __tablename__ = "meeting_attendance"
    meeting_id: int = Field(foreign_key="meeting.id", primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", primary_key=True)


class ActionPlan(Evidence, table=True):
    """Task 7.2: a weekly, monthly or quarterly action plan."""

    __tablename__ = "action_plan"
    period: str  # weekly | monthly | quarterly
    made_on: date
    summary: str


class HealthCheck(Evidence, table=True):
    """Task 7.4."""

    __tablename__ = "health_check"
    held_on: date
    summary: str


class Monitoring(Evidence, table=True):
    """Tasks 8.1 (progress against milestones) and 8.2 (process against baseline)."""

    kind: str  # progress | process
    recorded_on: date
    summary: str


class Report(Evidence, table=True):
    """Task 8.3."""

    issued_on: date
    period: str
    link: str | None = None


class Milestone(Evidence, table=True):
    """Task 8.1: a milestone, its deadline, and when it was reached (or why not)."""

    __table_args__ = (UniqueConstraint("partnership_id", "name"),)
    name: str
    due_on: date = Field(index=True)
    component_id: int | None = Field(default=None, foreign_key="component.id")
    done_on: date | None = None
    delay: str | None = None


class SdgIndicator(Evidence, table=True):
    """Task 9.1: an SDG indicator tracked, with its baseline and target."""

    __tablename__ = "sdg_indicator"
    __table_args__ = (UniqueConstraint("partnership_id", "code"),)
    code: str  # "6.1.1"
    baseline: float
    target: float
    unit: str | None = None
    baseline_on: date | None = None
    target_on: date | None = None


class IndicatorValue(Evidence, table=True):
    """Task 9.1: one measured value of a tracked indicator."""

    __tablename__ = "indicator_value"
    indicator_id: int = Field(foreign_key="sdg_indicator.id", index=True)
    value: float
    measured_on: date
    source: str | None = None


class PanelMember(Evidence, table=True):
    """Task 9.1: a partner's representative on the review panel."""

    __tablename__ = "panel_member"
    partner_id: int = Field(foreign_key="partner.id")
    name: str


class Review(Evidence, table=True):
    """Tasks 9.1 and 9.2."""

    kind: str  # progress | process | midterm
    held_on: date
    findings: str
    on_track: bool | None = None


class Revision(Evidence, table=True):
    """Task 10.1."""

    description: str


class Lesson(Evidence, table=True):
    """Tasks 10.2 and 12.1; a replica inherits its parent's lessons (11.1)."""

    text: str
    inherited_from: int | None = Field(default=None, foreign_key="partnership.id")


class ScaleUpDecision(Evidence, table=True):
    """Task 11.1."""

    __tablename__ = "scale_up_decision"
    dimensions: str  # comma-separated: social, physical, political, conceptual
    description: str  # how it scales up; for a decision not to, the reason
    declined: bool = False  # the partners decided not to scale up (1319)
    replica_id: int | None = Field(default=None, foreign_key="partnership.id")


class OutcomeRecord(Evidence, table=True):
    """Task 12.1: the outcome a partnership moved on with."""

    __tablename__ = "outcome"
    outcome: str
    reason: str | None = None
    note: str | None = None
    seq: int  # the history event that carried it


class Attestation(Evidence, table=True):
    """A secretariat member's word that a task is done (judgment-call criteria)."""

    task: str
    note: str
    link: str | None = None


class Schedule(Evidence, table=True):
    """An agreed cadence (FRAMEWORK.md section 4); partnership data, not code."""

    kind: str
    cadence: str
    starts_on: date
    local_time: str = "09:00"  # HH:MM in `timezone`
    timezone: str = "UTC"
    lead_days: str = "7,1"  # reminders this many days before each occurrence
    grace_days: int = 7
    active: bool = True
    #: Scheduler bookkeeping: nothing of this schedule fires before this instant,
    #: so a sweep skips it until then (None: not looked at yet).
    next_due_at: datetime | None = Field(default=None, index=True)


# --------------------------------------------------------------------------- scheduling


class FiredTrigger(SQLModel, table=True):
    """One scheduled trigger handled: a reminder, an overdue flag, a review that
    fell due, the end of the time frame.

    ``key`` names the trigger uniquely (schedule or partnership, purpose and
    occurrence); inserting it is the claim, so however many sweepers run, each
    trigger is handled once, in the transaction that records what it did.
    """

    __tablename__ = "fired_trigger"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    partnership_id: int = Field(foreign_key="partnership.id", index=True)
    schedule_id: int | None = Field(default=None, foreign_key="schedule.id", index=True)
    purpose: str = Field(index=True)  # reminder | overdue | review-due | time-frame-end
    occurrence: datetime  # UTC: when the scheduled thing happens (or happened)
    due_at: datetime  # UTC: when this trigger was due to fire
    fired_at: datetime
    late: bool = False
    outcome: str  # notified | moved | skipped | not-applicable
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    sweeper: str
    #: For an overdue flag: when the missing record was logged after all.
    resolved_at: datetime | None = None


class Notification(SQLModel, table=True):
    """The outbox: one message to one recipient over one channel.

    Written in the same transaction as its trigger; delivered afterwards with
    retries and backoff. Unique per (trigger, channel, recipient), so nobody is
    sent the same reminder twice.
    """

    __tablename__ = "notification"
    __table_args__ = (UniqueConstraint("trigger_id", "channel", "recipient"),)
    id: int | None = Field(default=None, primary_key=True)
    trigger_id: int = Field(foreign_key="fired_trigger.id", index=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True)
    channel: str  # email | terminal
    recipient: str  # an email address, or "terminal"
    recipient_name: str | None = None
    subject: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", index=True)  # pending | sending | sent
    attempts: int = 0
    next_attempt_at: datetime = Field(index=True)
    lease_until: datetime | None = None
    sweeper: str | None = None
    last_error: str | None = None
    created_at: datetime
    sent_at: datetime | None = None


class ChatChannel(SQLModel, table=True):
    """A chat or webhook destination for notifications (an Apprise URL): of one
    partnership, or of the whole portfolio (``partnership_id`` None)."""

    __tablename__ = "chat_channel"
    __table_args__ = (UniqueConstraint("label"),)
    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int | None = Field(default=None, foreign_key="partnership.id", index=True)
    label: str
    url: str = Field(sa_column=Column(Text, nullable=False))  # may hold a token: never shown
    active: bool = True
    added_by: str
    added_at: datetime


class SweepState(SQLModel, table=True):
    """Up to when the sweepers have looked (one row)."""

    __tablename__ = "sweep_state"
    id: int = Field(default=1, primary_key=True)
    swept_until: datetime
    sweeps: int = 0


# --------------------------------------------------------------------------- audit


class HistoryEvent(SQLModel, table=True):
    """One entry of the hash-chained, append-only history."""

    __tablename__ = "history_event"
    seq: int = Field(primary_key=True)
    partnership: str = Field(index=True)  # the partnership's slug
    at: str = Field(index=True)  # UTC, ISO 8601 with microseconds and 'Z' (sorts as time)
    actor: str = Field(index=True)
    role: str
    kind: str = Field(index=True)
    trigger: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    waived: str = "[]"  # JSON list of criterion ids
    evidence: str = "{}"  # JSON: criterion id -> what evidenced it
    definition: str  # "name@version#hash"
    data: str = "{}"  # JSON: anything else the event carries
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class Waiver(SQLModel, table=True):
    """A criterion waived by a secretariat member, valid for one visit of a step."""

    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True)
    step: str
    criterion: str
    reason: str
    actor: str
    seq: int  # the history event that recorded it


class GateDebt(SQLModel, table=True):
    """A criterion of a step skipped at onboarding, until backfilled or waived."""

    __tablename__ = "gate_debt"
    __table_args__ = (UniqueConstraint("partnership_id", "step", "criterion"),)
    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int = Field(foreign_key="partnership.id", index=True)
    step: str
    criterion: str
    task: str
    status: str = "open"  # open | backfilled | waived
    resolved_seq: int | None = None


# --------------------------------------------------------------------------- kinds


def evidence_table(kind: str) -> type[SQLModel]:
    """The table of a kind of evidence (:data:`mspflow.definition.kinds.KINDS`)."""
    from mspflow.definition.kinds import KINDS

    table: type[SQLModel] = globals()[KINDS[kind].model]
    return table
