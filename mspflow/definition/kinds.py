"""The kinds of evidence mspflow keeps: each declared once, here.

A declaration says everything the rest of mspflow needs to know about a kind:

- its **fields** (name, type, whether required, how it is given on a command
  line or in a bulk file) and so how each value is validated
  (:mod:`mspflow.services.evidence`);
- the **table** holding it (a class of :mod:`mspflow.store.models`, named here as
  text so that this module stays free of the database layer);
- the **gate name** under which workflow definitions refer to it, and which
  built-in checks may read it (:mod:`mspflow.definition.checks` derives the
  parameters it accepts; :mod:`mspflow.gates` finds the table);
- the **record a schedule expects** of it, with its date column (the sweep's
  overdue flags and ``schedule status``);
- its **export object type** for OCEL 2.0 (:mod:`mspflow.audit.export`);
- whether a **partner** user may record it (:mod:`mspflow.services.policy`).

The ``mspflow record`` subcommands, bulk import, the definition validator, the
gate checks, the sweep and the exports are all derived from :data:`KINDS`;
``tests/definition/test_kinds.py`` proves that every derived list agrees.
Adding a kind: one declaration below, its table class in
:mod:`mspflow.store.models` and a migration (README, "Contributing").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "AMOUNT_MAX",
    "DERIVED_FILTERS",
    "FIELD_TYPES",
    "KINDS",
    "LINK_MAX",
    "PARTNER_ROLES",
    "RECORD_KEY",
    "RESOURCE_TYPES",
    "RISK_AREAS",
    "SCALE_UP_DIMENSIONS",
    "EvidenceKind",
    "Expected",
    "ExportType",
    "FieldSpec",
    "by_gate_name",
    "filter_types",
    "recordable",
]

#: The key (YAML) or column (CSV) naming a bulk row's kind of record; no field is named so.
RECORD_KEY = "record"
#: Links and document references: one line, longer than a name.
LINK_MAX = 2_000
#: The largest resource amount (a hundred billion in any currency): more is a typo.
AMOUNT_MAX = 100_000_000_000

#: Task 3.2: the five areas in which risks of partnering are assessed.
RISK_AREAS: tuple[str, ...] = (
    "reputation",
    "autonomy",
    "conflict-of-interest",
    "resource-drain",
    "implementation",
)

#: The types of resources partners bring (lines 594-595, 849, 959); ``in-kind``
#: is a non-financial resource of no named type (what records before the types
#: were tracked say).
RESOURCE_TYPES: tuple[str, ...] = (
    "financial", "technological", "managerial", "institutional", "human", "knowledge",
    "physical", "in-kind",
)  # fmt: skip
_RESOURCE_HELP = "financial, technological, managerial, institutional, human, knowledge, physical"

#: A partner's role in the partnership as IATI's participating organisations name it.
PARTNER_ROLES: tuple[str, ...] = ("funding", "accountable", "extending", "implementing")

#: Task 11.1: the dimensions along which an MSP may go to scale.
SCALE_UP_DIMENSIONS: tuple[str, ...] = ("social", "physical", "political", "conceptual")

#: Field types, each checked by one rule of :mod:`mspflow.inputs` (or a reference
#: to a row of the same partnership: partner, component, objective).
FIELD_TYPES = (
    "text", "line", "email", "date", "bool", "number", "days", "day-list", "zone", "time",
    "choice", "sdg", "sdg-indicator", "partner", "component", "objective", "indicator",
)  # fmt: skip


@dataclass(frozen=True)
class FieldSpec:
    """One field of a kind of record."""

    name: str
    type: str = "text"
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    multiple: bool = False
    argument: bool = False  # positional on the command line
    column: str | None = None  # the table's column, when it differs from ``name``; "-": none
    limit: int = 0  # characters (text, line) or magnitude (number); 0: the rule's default

    @property
    def attr(self) -> str:
        return self.column or self.name


@dataclass(frozen=True)
class Expected:
    """What a schedule expecting this record looks for: a row dated near an occurrence."""

    date_column: str
    label: str  # "minutes of the meeting": how messages name the missing record


@dataclass(frozen=True)
class ExportType:
    """How rows of a kind become OCEL 2.0 objects."""

    name: str  # the object type
    #: (attribute name, column, OCEL type)
    attributes: tuple[tuple[str, str, str], ...]
    #: keys under which a gate's evidence (in the history) names rows of this kind
    evidence_keys: tuple[str, ...]


@dataclass(frozen=True)
class EvidenceKind:
    """One kind of evidence: fields, table, what reads it."""

    kind: str  # as in ``mspflow record KIND`` and a bulk row's ``record``
    model: str  # its table class in mspflow.store.models
    task: str
    help: str
    fields: tuple[FieldSpec, ...]
    single: bool = False  # one row per partnership, updated in place
    #: Recorded with ``mspflow record`` and bulk import (False: by its own operation).
    recordable: bool = True
    #: How definitions name it in gate checks (``record: sdg_target``); None: never.
    gate: str | None = None
    #: The built-in checks that may name it in their ``record`` parameter.
    checks: tuple[str, ...] = ()
    #: Filters a ``where`` of records_at_least / each_partner_has may use: the
    #: name of a choice or bool field, or a derived one (``with_minutes``).
    filters: tuple[str, ...] = ()
    expected: Expected | None = None
    export: ExportType | None = None
    #: A partner user of the partnership may record it (minutes, monitoring, reports).
    by_partners: bool = False

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


#: Filters that are no field of their own: a predicate over a column, by the
#: filter's name: (the column, whether ``true`` means the column is filled).
DERIVED_FILTERS: Mapping[str, tuple[str, bool]] = MappingProxyType(
    {
        "with_minutes": ("minutes", True),  # a meeting counts when its minutes are kept
        "with_contact": ("contact_name", True),  # a partner with a named contact (1.4)
        "own": ("inherited_from", False),  # a lesson not inherited from a parent (11.1)
        "reached": ("done_on", True),  # a milestone reached
    }
)

F = FieldSpec
_AT_LEAST = ("records_at_least",)

_PROFILE_TEXT = (
    "senior_support", "partnering_rationale", "partner_kinds_needed", "problem_definition",
    "target_population", "baseline_conditions", "shared_goal", "policy_coherence",
    "indicator_baseline",
)  # fmt: skip

_DECLARED = (
    EvidenceKind(
        "profile",
        "Profile",
        "1.1-2.4",
        "Facts of steps 1-2 and the start date (6.1).",
        (
            F("challenge"),
            F("lead_organization", "line"),
            *(F(n) for n in _PROFILE_TEXT),
            F("implementation_start", "date"),
        ),
        single=True,
        gate="profile",
        checks=("fields_recorded",),
    ),
    EvidenceKind(
        "scope",
        "Scope",
        "2.3",
        "Outputs, geography, time frame, resources, limits.",
        (
            F("outputs"),
            F("geographic_focus"),
            F("start", "date", column="start_date"),
            F("end", "date", column="end_date"),
            F("resources_needed"),
            F("out_of_scope"),
        ),
        single=True,
        gate="scope",
        checks=("fields_recorded",),
    ),
    EvidenceKind(
        "governance",
        "Governance",
        "3.5",
        "Governance and the process baseline.",
        (F("procedures"), F("process_baseline")),
        single=True,
        gate="governance",
        checks=("fields_recorded",),
    ),
    EvidenceKind(
        "decision-making",
        "DecisionMaking",
        "5.3",
        "How decisions are taken, including in emergencies.",
        (F("structure"), F("contingency_process")),
        single=True,
        gate="decision_making",
        checks=("fields_recorded",),
    ),
    EvidenceKind(
        "sdg",
        "SdgTarget",
        "1.1",
        "Link an SDG target (e.g. 6.1).",
        (F("code", "sdg", True, "target code", argument=True),),
        gate="sdg_target",
        checks=_AT_LEAST,
    ),
    EvidenceKind(
        "objective",
        "Objective",
        "2.2",
        "An objective of the partnership.",
        (F("text", required=True, argument=True),),
        gate="objective",
        checks=(*_AT_LEAST, "objectives_covered"),
    ),
    EvidenceKind(
        "partner",
        "Partner",
        "1.4",
        "A partner organization.",
        (
            F("name", "line", True, argument=True),
            F("sector", "line", True),
            F("contact", "line", column="contact_name"),
            F("email", "email", column="contact_email"),
            F("can_decide", "bool", help="the contact can commit the organization"),
            F("objectives"),
            F("accountable_to"),
            F(
                "role",
                "choice",
                choices=PARTNER_ROLES,
                help="funding, accountable, extending "
                "or implementing (IATI's participating-organisation roles)",
            ),
        ),
        gate="partner",
        checks=(*_AT_LEAST, "each_partner_fields"),
        filters=("can_decide", "with_contact"),
        export=ExportType(
            "partner",
            (
                ("name", "name", "string"),
                ("sector", "sector", "string"),
                ("can_decide", "can_decide", "boolean"),
                ("active", "active", "boolean"),
            ),
            ("partner", "partners"),
        ),
    ),
    EvidenceKind(
        "resource",
        "Resource",
        "3.1",
        "A resource a partner brings.",
        (
            F("partner", "partner", True, argument=True, column="partner_id"),
            F("kind", "choice", True, choices=RESOURCE_TYPES, help=_RESOURCE_HELP),
            F("description", required=True),
            F("amount", "number", limit=AMOUNT_MAX),
            F("currency", "line", help="ISO 4217 code of a financial amount, e.g. USD"),
            F("committed", "bool"),
            F("mobilized", "bool"),
        ),
        gate="resource",
        checks=(*_AT_LEAST, "each_partner_has", "resources_mobilized"),
        filters=("kind", "committed", "mobilized"),
    ),
    EvidenceKind(
        "risk",
        "Risk",
        "3.2",
        "A risk of partnering, with its mitigation.",
        (
            F("area", "choice", True, choices=RISK_AREAS),
            F("description", required=True),
            F("mitigation"),
        ),
        gate="risk",
        checks=(*_AT_LEAST, "risk_areas_covered"),
    ),
    EvidenceKind(
        "risk-reward",
        "RiskReward",
        "3.2",
        "What one partner expects to gain and to risk by partnering.",
        (
            F("partner", "partner", True, argument=True, column="partner_id"),
            F("rewards", required=True),
            F("risks", required=True),
        ),
        gate="risk_reward",
        checks=(*_AT_LEAST, "each_partner_has"),
    ),
    EvidenceKind(
        "signature",
        "Signature",
        "3.4",
        "A partner signed the partnering agreement.",
        (
            F("partner", "partner", True, argument=True, column="partner_id"),
            F("on", "date", column="signed_on"),
            F("document", "line", limit=LINK_MAX),
        ),
        gate="signature",
        checks=(*_AT_LEAST, "each_partner_has"),
    ),
    EvidenceKind(
        "component",
        "Component",
        "4.1",
        "A component and the objectives it serves.",
        (
            F("name", "line", True, argument=True),
            F("objective", "objective", multiple=True, column="-"),
        ),
        gate="component",
        checks=(*_AT_LEAST, "objectives_covered", "components_led"),
    ),
    EvidenceKind(
        "component-lead",
        "ComponentLead",
        "5.2",
        "A partner leads a component.",
        (
            F("component", "component", True, argument=True, column="component_id"),
            F("partner", "partner", True, argument=True, column="partner_id"),
            F("joint", "bool"),
        ),
        checks=("components_led",),
    ),
    EvidenceKind(
        "activity",
        "Activity",
        "4.2",
        "An activity with one responsible partner.",
        (
            F("component", "component", True, argument=True, column="component_id"),
            F("name", "line", True, argument=True),
            F("responsible", "partner", True, column="responsible_partner_id"),
            F("start", "date"),
            F("end", "date"),
        ),
        gate="activity",
        checks=(*_AT_LEAST, "activities_assigned"),
    ),
    EvidenceKind(
        "leadership",
        "OverallLead",
        "5.1",
        "Name the partner leading overall.",
        (F("partner", "partner", True, argument=True, column="partner_id"),),
        checks=("lead_agreed",),
    ),
    EvidenceKind(
        "leadership-agreement",
        "LeadershipAgreement",
        "5.1",
        "A partner agrees to the overall lead.",
        (F("partner", "partner", True, argument=True, column="partner_id"),),
        checks=("lead_agreed",),
    ),
    EvidenceKind(
        "schedule",
        "Schedule",
        "7.1/8.1",
        "An agreed cadence: meetings, monitoring, reporting, reviews.",
        (
            F("kind", "line", True, argument=True),
            F("cadence", "line", help="default: the kind's own (once for midterm)"),
            F("start", "date", column="starts_on", help="first date (derived for midterm)"),
            F("at", "time", column="local_time", help="local time HH:MM"),
            F("timezone", "zone", help="IANA name, e.g. Asia/Phnom_Penh"),
            F("lead_days", "day-list", help="days before, e.g. 7,1"),
            F("grace_days", "days", help="days to log the record"),
        ),
        checks=("schedules_defined",),
        export=ExportType(
            "schedule",
            (
                ("kind", "kind", "string"),
                ("cadence", "cadence", "string"),
                ("starts_on", "starts_on", "time"),
                ("local_time", "local_time", "string"),
                ("timezone", "timezone", "string"),
                ("active", "active", "boolean"),
            ),
            ("schedule",),
        ),
    ),
    EvidenceKind(
        "meeting",
        "Meeting",
        "7.1",
        "A coordination meeting, minutes, attendance.",
        (
            F("on", "date", column="held_on"),
            F("minutes"),
            F("present", "partner", multiple=True, column="-"),
        ),
        gate="meeting",
        checks=_AT_LEAST,
        filters=("with_minutes",),
        expected=Expected("held_on", "minutes of the meeting"),
        export=ExportType(
            "meeting",
            (("held_on", "held_on", "time"), ("minutes", "minutes", "string")),
            ("meeting",),
        ),
        by_partners=True,
    ),
    EvidenceKind(
        "action-plan",
        "ActionPlan",
        "7.2",
        "A monthly or quarterly action plan for the components.",
        (
            F("period", "choice", True, choices=("weekly", "monthly", "quarterly")),
            F("on", "date", column="made_on"),
            F("summary", required=True),
        ),
        gate="action_plan",
        checks=_AT_LEAST,
        filters=("period",),
        expected=Expected("made_on", "action plan"),
        export=ExportType(
            "action-plan",
            (
                ("period", "period", "string"),
                ("made_on", "made_on", "time"),
                ("summary", "summary", "string"),
            ),
            ("action_plan",),
        ),
    ),
    EvidenceKind(
        "health-check",
        "HealthCheck",
        "7.4",
        "A health check of the partnership.",
        (F("on", "date", column="held_on"), F("summary", required=True)),
        gate="health_check",
        checks=_AT_LEAST,
        expected=Expected("held_on", "health check"),
        export=ExportType(
            "health-check",
            (("held_on", "held_on", "time"), ("summary", "summary", "string")),
            ("health_check",),
        ),
    ),
    EvidenceKind(
        "monitoring",
        "Monitoring",
        "8.1/8.2",
        "Progress or process monitored.",
        (
            F("kind", "choice", True, choices=("progress", "process")),
            F("on", "date", column="recorded_on"),
            F("summary", required=True),
        ),
        gate="monitoring",
        checks=_AT_LEAST,
        filters=("kind",),
        expected=Expected("recorded_on", "monitoring record"),
        export=ExportType(
            "monitoring",
            (
                ("kind", "kind", "string"),
                ("recorded_on", "recorded_on", "time"),
                ("summary", "summary", "string"),
            ),
            ("monitoring",),
        ),
        by_partners=True,
    ),
    EvidenceKind(
        "report",
        "Report",
        "8.3",
        "A progress report issued.",
        (
            F("on", "date", column="issued_on"),
            F("period", "line", True),
            F("link", "line", limit=LINK_MAX),
        ),
        gate="report",
        checks=_AT_LEAST,
        expected=Expected("issued_on", "report"),
        export=ExportType(
            "report",
            (("issued_on", "issued_on", "time"), ("period", "period", "string")),
            ("report",),
        ),
        by_partners=True,
    ),
    EvidenceKind(
        "milestone",
        "Milestone",
        "8.1",
        "A milestone with its deadline; flagged when it passes undone.",
        (
            F("name", "line", True, argument=True),
            F("due", "date", True, column="due_on"),
            F("component", "component", column="component_id"),
            F("done", "date", column="done_on", help="the date it was reached"),
            F("delay", help="why it is late, and what is done about it"),
        ),
        gate="milestone",
        checks=_AT_LEAST,
        filters=("reached",),
        export=ExportType(
            "milestone",
            (
                ("name", "name", "string"),
                ("due_on", "due_on", "time"),
                ("done_on", "done_on", "time"),
            ),
            ("milestone",),
        ),
        by_partners=True,
    ),
    EvidenceKind(
        "indicator",
        "SdgIndicator",
        "9.1",
        "An SDG indicator the partnership tracks (e.g. 6.1.1), baseline and target.",
        (
            F("code", "sdg-indicator", True, "indicator code", argument=True),
            F("baseline", "number", True, limit=AMOUNT_MAX),
            F("target", "number", True, limit=AMOUNT_MAX),
            F("unit", "line"),
            F("baseline_on", "date", help="when the baseline was measured"),
            F("target_on", "date", help="when the target is to be met"),
        ),
        gate="sdg_indicator",
        checks=_AT_LEAST,
    ),
    EvidenceKind(
        "indicator-value",
        "IndicatorValue",
        "9.1",
        "A measured value of a tracked SDG indicator.",
        (
            F("indicator", "indicator", True, argument=True, column="indicator_id"),
            F("value", "number", True, argument=True, limit=AMOUNT_MAX),
            F("on", "date", True, column="measured_on"),
            F("source", "line", limit=LINK_MAX, help="where the figure comes from"),
        ),
        gate="indicator_value",
        checks=_AT_LEAST,
        by_partners=True,
    ),
    EvidenceKind(
        "panel-member",
        "PanelMember",
        "9.1",
        "A partner's review-panel member.",
        (
            F("partner", "partner", True, argument=True, column="partner_id"),
            F("name", "line", True),
        ),
        gate="panel_member",
        checks=(*_AT_LEAST, "panel_represents_partners"),
    ),
    EvidenceKind(
        "review",
        "Review",
        "9.1/9.2",
        "A review of progress or of processes.",
        (
            F("kind", "choice", True, choices=("progress", "process", "midterm")),
            F("on", "date", column="held_on"),
            F("findings", required=True),
            F("on_track", "bool"),
        ),
        gate="review",
        checks=_AT_LEAST,
        filters=("kind", "on_track"),
        expected=Expected("held_on", "review"),
        export=ExportType(
            "review",
            (
                ("kind", "kind", "string"),
                ("held_on", "held_on", "time"),
                ("findings", "findings", "string"),
                ("on_track", "on_track", "boolean"),
            ),
            ("review",),
        ),
    ),
    EvidenceKind(
        "revision",
        "Revision",
        "10.1",
        "A revision made after review.",
        (F("description", required=True),),
        gate="revision",
        checks=_AT_LEAST,
    ),
    EvidenceKind(
        "lesson",
        "Lesson",
        "10.2",
        "A lesson learned.",
        (F("text", required=True, argument=True),),
        gate="lesson",
        checks=_AT_LEAST,
        filters=("own",),
    ),
    EvidenceKind(
        "attestation",
        "Attestation",
        "any",
        "A secretariat member attests a task is done.",
        (
            F("task", "line", True, argument=True),
            F("note", required=True),
            F("link", "line", limit=LINK_MAX),
        ),
        checks=("attested",),
    ),
    EvidenceKind(
        "scale-up",
        "ScaleUpDecision",
        "11.1",
        "A scale-up decision (made with 'scale-up', not recorded directly).",
        (
            F("dimensions", "line", True),
            F("description", required=True),
        ),
        recordable=False,
        gate="scale_up",
        checks=(*_AT_LEAST, "scale_up_decided"),
    ),
    EvidenceKind(
        "outcome",
        "OutcomeRecord",
        "12.1",
        "The outcome a partnership moved on with (made with 'conclude').",
        (
            F("outcome", "line", True),
            F("reason", "line"),
            F("note"),
        ),
        recordable=False,
    ),
)

#: Every kind of evidence, by its ``kind``, in the order commands list them.
KINDS: Mapping[str, EvidenceKind] = MappingProxyType({k.kind: k for k in _DECLARED})


def recordable() -> tuple[EvidenceKind, ...]:
    """The kinds recorded with ``mspflow record`` and bulk import."""
    return tuple(k for k in KINDS.values() if k.recordable)


def by_gate_name() -> Mapping[str, EvidenceKind]:
    """The kinds gate checks name, by the name they use (``sdg_target``)."""
    return MappingProxyType({k.gate: k for k in KINDS.values() if k.gate is not None})


def _check() -> None:
    """Declarations that contradict themselves fail at import, not at some later use."""
    gates = [k.gate for k in KINDS.values() if k.gate]
    assert len(gates) == len(set(gates)), "two kinds with one gate name"
    for k in KINDS.values():
        assert all(f.type in FIELD_TYPES for f in k.fields), k.kind
        assert all(f.name != RECORD_KEY for f in k.fields), k.kind
        for name in k.filters:
            f = k.field(name)
            assert name in DERIVED_FILTERS or (f and f.type in ("choice", "bool")), (k.kind, name)


_check()


def filter_types(kind: EvidenceKind) -> dict[str, tuple[str, ...] | type]:
    """The filters of ``kind`` with what each accepts: choices, or ``bool``."""
    out: dict[str, tuple[str, ...] | type] = {}
    for name in kind.filters:
        f = kind.field(name)
        if f is None:
            out[name] = bool
        else:
            out[name] = f.choices if f.type == "choice" else bool
    return out
