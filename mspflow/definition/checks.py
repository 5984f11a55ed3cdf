"""The catalogue of built-in gate checks: names, parameters and what they read.

This is the contract between definitions and the engine. The validator uses it
to reject a criterion naming an unknown check or a wrong parameter; the engine
(:mod:`mspflow.gates`) implements one evaluator per name, with the same
parameters; tests/definition/test_checks.py keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CHECKS",
    "FIELD_RECORDS",
    "PARTNER_FIELDS",
    "RECORD_FILTERS",
    "RISK_AREAS",
    "SCALE_UP_DIMENSIONS",
    "CheckSpec",
    "ParamSpec",
]

#: Single-row records of a partnership and the fields a gate may ask for.
FIELD_RECORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "profile": (
            "challenge",  # 1.1
            "lead_organization",  # 1.2
            "senior_support",  # 1.2
            "partnering_rationale",  # 1.3
            "partner_kinds_needed",  # 1.3
            "problem_definition",  # 2.1
            "target_population",  # 2.1
            "baseline_conditions",  # 2.1
            "shared_goal",  # 2.2
            "policy_coherence",  # 2.4
            "indicator_baseline",  # 2.4
            "implementation_start",  # 6.1
        ),
        "scope": (
            "outputs",
            "geographic_focus",
            "start_date",
            "end_date",
            "resources_needed",
            "out_of_scope",
        ),  # 2.3
        "governance": ("procedures", "process_baseline"),  # 3.5
        "decision_making": ("structure", "contingency_process"),  # 5.3
    }
)

#: Fields of each partner that a gate may require for every active partner.
PARTNER_FIELDS: tuple[str, ...] = ("contact_name", "objectives", "accountable_to")

#: Many-row records a gate may count, with the filters a ``where`` may use.
RECORD_FILTERS: Mapping[str, Mapping[str, tuple[str, ...] | type]] = MappingProxyType(
    {
        "sdg_target": {},
        "objective": {},
        "partner": {"can_decide": bool},
        "resource": {"kind": ("in-kind", "financial"), "committed": bool},
        "risk": {},
        "signature": {},
        "component": {},
        "activity": {},
        "meeting": {"with_minutes": bool},
        "health_check": {},
        "monitoring": {"kind": ("progress", "process")},
        "report": {},
        "panel_member": {},
        "review": {"kind": ("progress", "process", "midterm")},
        "revision": {},
        "lesson": {},
        "scale_up": {},
    }
)

#: Task 3.2: the five areas in which risks of partnering are assessed.
RISK_AREAS: tuple[str, ...] = (
    "reputation",
    "autonomy",
    "conflict-of-interest",
    "resource-drain",
    "implementation",
)

#: Task 11.1: the dimensions along which an MSP may go to scale.
SCALE_UP_DIMENSIONS: tuple[str, ...] = ("social", "physical", "political", "conceptual")


@dataclass(frozen=True)
class ParamSpec:
    type: str  # "str" | "int" | "list" | "mapping"
    required: bool = False
    choices: tuple[str, ...] | None = None  # for "str", or for each item of a "list"


@dataclass(frozen=True)
class CheckSpec:
    name: str
    summary: str
    params: Mapping[str, ParamSpec]


def _spec(name: str, summary: str, **params: ParamSpec) -> CheckSpec:
    return CheckSpec(name, summary, MappingProxyType(params))


_ALL_FIELDS = tuple(sorted({f for fs in FIELD_RECORDS.values() for f in fs}))

CHECKS: Mapping[str, CheckSpec] = MappingProxyType(
    {
        c.name: c
        for c in (
            _spec(
                "fields_recorded",
                "the named fields of a single-row record are filled in",
                record=ParamSpec("str", True, tuple(FIELD_RECORDS)),
                fields=ParamSpec("list", True, _ALL_FIELDS),
            ),
            _spec(
                "records_at_least",
                "at least `min` records of a kind exist (optionally matching `where`)",
                record=ParamSpec("str", True, tuple(RECORD_FILTERS)),
                min=ParamSpec("int"),
                where=ParamSpec("mapping"),
            ),
            _spec(
                "each_partner_has",
                "every active partner has at least one record of a kind",
                record=ParamSpec("str", True, ("resource", "signature")),
                where=ParamSpec("mapping"),
            ),
            _spec(
                "each_partner_fields",
                "every active partner has the named fields filled in",
                fields=ParamSpec("list", True, PARTNER_FIELDS),
            ),
            _spec(
                "risk_areas_covered",
                "each named risk area has an assessed risk with a mitigation",
                areas=ParamSpec("list", True, RISK_AREAS),
            ),
            _spec("objectives_covered", "every objective is served by at least one component"),
            _spec(
                "activities_assigned",
                "activities exist, each with one responsible partner and a start and end date",
            ),
            _spec("components_led", "components exist, each with at least one lead partner"),
            _spec("lead_agreed", "an overall lead is named and every active partner agreed"),
            _spec(
                "resources_mobilized",
                "every partner that committed resources has them all mobilized",
            ),
            _spec(
                "schedules_defined",
                "the partnership has an active schedule of each named kind",
                kinds=ParamSpec("list", True),
            ),
            _spec(
                "panel_represents_partners",
                "the review panel has a representative of every active partner",
            ),
            _spec(
                "scale_up_decided",
                "a scale-up decision names at least one of the dimensions",
                dimensions=ParamSpec("list", True, SCALE_UP_DIMENSIONS),
            ),
            _spec("outcome_recorded", "a step-12 outcome is recorded for this visit of step 12"),
            _spec("attested", "a secretariat member attested that the criterion's task is done"),
        )
    }
)
