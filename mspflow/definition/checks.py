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

from mspflow.definition.kinds import KINDS, RISK_AREAS, SCALE_UP_DIMENSIONS, filter_types

__all__ = [
    "CHECKS",
    "EACH_PARTNER_RECORDS",
    "EXPECTED_RECORDS",
    "FIELD_RECORDS",
    "PARTNER_FIELDS",
    "RECORD_FILTERS",
    "RISK_AREAS",
    "SCALE_UP_DIMENSIONS",
    "CheckSpec",
    "ParamSpec",
]

#: Single-row records of a partnership and the fields a gate may ask for (by column).
FIELD_RECORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        k.gate: tuple(f.attr for f in k.fields)
        for k in KINDS.values()
        if k.gate and "fields_recorded" in k.checks
    }
)

#: Fields of each partner that a gate may require for every active partner.
PARTNER_FIELDS: tuple[str, ...] = ("contact_name", "objectives", "accountable_to")

#: Many-row records a gate may count, with the filters a ``where`` may use.
RECORD_FILTERS: Mapping[str, Mapping[str, tuple[str, ...] | type]] = MappingProxyType(
    {
        k.gate: MappingProxyType(filter_types(k))
        for k in KINDS.values()
        if k.gate and "records_at_least" in k.checks
    }
)

#: Records ``each_partner_has`` may ask of every active partner.
EACH_PARTNER_RECORDS: tuple[str, ...] = tuple(
    k.gate for k in KINDS.values() if k.gate and "each_partner_has" in k.checks
)

#: Records a schedule may expect (``record:`` of a schedule kind).
EXPECTED_RECORDS: tuple[str, ...] = tuple(
    k.gate for k in KINDS.values() if k.gate and k.expected is not None
)


@dataclass(frozen=True)
class ParamSpec:
    type: str  # "str" | "int" | "bool" | "list" | "mapping"
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
                record=ParamSpec("str", True, EACH_PARTNER_RECORDS),
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
                "every committed resource is mobilized (with each_partner: and every "
                "active partner has one)",
                each_partner=ParamSpec("bool"),
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
