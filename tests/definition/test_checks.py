"""The catalogue of gate checks (definition.checks.CHECKS) and their evaluators
(gates.EVALUATORS) kept in step: one evaluator per check and one check per
evaluator, with the same parameter names and the same ones required, and every
record, field and filter the catalogue offers readable by the evaluators."""

from __future__ import annotations

import inspect

import pytest

from mspflow import gates
from mspflow.definition.checks import (
    CHECKS,
    FIELD_RECORDS,
    PARTNER_FIELDS,
    RECORD_FILTERS,
)
from mspflow.definition.kinds import DERIVED_FILTERS
from mspflow.store import models as m

#: Parameters an evaluator takes that no definition gives: ``attested`` is told
#: the criterion's own task by gates.evaluate.
FROM_THE_CRITERION = {"attested": {"task"}}


def test_every_check_has_an_evaluator_and_every_evaluator_a_check() -> None:
    assert sorted(gates.EVALUATORS) == sorted(CHECKS)
    for name, evaluator in gates.EVALUATORS.items():
        assert evaluator.__name__ == name


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_parameters_match(name: str) -> None:
    spec = CHECKS[name]
    signature = inspect.signature(gates.EVALUATORS[name])
    first, *rest = signature.parameters.values()
    assert first.name == "ctx", name
    taken = {p.name for p in rest} - FROM_THE_CRITERION.get(name, set())
    assert taken == set(spec.params), name
    required = {p.name for p in rest if p.default is inspect.Parameter.empty}
    required -= FROM_THE_CRITERION.get(name, set())
    assert required == {k for k, p in spec.params.items() if p.required}, name
    for p in rest:
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (name, p.name)


def test_records_the_catalogue_offers_are_the_ones_the_evaluators_read() -> None:
    assert sorted(gates.MANY_TABLES) == sorted(RECORD_FILTERS)
    assert sorted(gates.SINGLE_TABLES) == sorted(FIELD_RECORDS)
    for record, fields in FIELD_RECORDS.items():
        columns = set(gates.SINGLE_TABLES[record].model_fields)
        assert set(fields) <= columns, (record, set(fields) - columns)
    assert set(PARTNER_FIELDS) <= set(m.Partner.model_fields)


@pytest.mark.parametrize("record", sorted(RECORD_FILTERS))
def test_each_filter_is_a_column_of_its_record(record: str) -> None:
    model = gates.MANY_TABLES[record]
    assert "partnership_id" in model.model_fields
    for name in RECORD_FILTERS[record]:
        column = DERIVED_FILTERS[name][0] if name in DERIVED_FILTERS else name
        assert column in model.model_fields, (record, name)


def test_per_partner_records_name_their_partner() -> None:
    for record in CHECKS["each_partner_has"].params["record"].choices or ():
        assert "partner_id" in gates.MANY_TABLES[record].model_fields, record
