"""One registry of evidence kinds, and every list derived from it agrees with it.

The record subcommands, bulk import, the definition validator's catalogue of
checks, the gate checks' tables, the sweep's expected records and the OCEL
object types are all derived from :data:`mspflow.definition.kinds.KINDS`; each
test below compares one of them with the registry, and every table of evidence
in the store is claimed by exactly one kind.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

from mspflow import gates
from mspflow.audit.export import OBJECT_TYPES
from mspflow.definition.checks import (
    CHECKS,
    EACH_PARTNER_RECORDS,
    EXPECTED_RECORDS,
    FIELD_RECORDS,
    RECORD_FILTERS,
)
from mspflow.definition.kinds import KINDS, by_gate_name, filter_types, recordable
from mspflow.services import sweep
from mspflow.services.evidence import RECORDS
from mspflow.store import models as m


def test_every_kind_names_a_table_with_its_columns() -> None:
    for k in KINDS.values():
        table = m.evidence_table(k.kind)
        columns = set(table.model_fields)
        assert "partnership_id" in columns, k.kind
        for f in k.fields:
            if f.attr != "-":
                assert f.attr in columns, (k.kind, f.name, f.attr)


def test_every_evidence_table_is_claimed_by_exactly_one_kind() -> None:
    claimed = [m.evidence_table(k.kind) for k in KINDS.values()]
    assert len(claimed) == len(set(claimed))
    evidence: set[Any] = {
        cls
        for cls in vars(m).values()
        if isinstance(cls, type)
        and issubclass(cls, SQLModel)
        and getattr(cls, "__table__", None) is not None
        and "recorded_by" in cls.model_fields
    }
    assert evidence == set(claimed)


def test_record_commands_and_import_offer_the_recordable_kinds() -> None:
    from mspflow.cli import main

    group = main.get_command(None, "record")  # type: ignore[arg-type]
    assert list(getattr(group, "lazy", {})) == [k.kind for k in recordable()]
    assert list(RECORDS) == [k.kind for k in recordable()]


def test_the_catalogue_of_checks_is_derived_from_the_kinds() -> None:
    gated = by_gate_name()
    assert set(FIELD_RECORDS) == {n for n, k in gated.items() if "fields_recorded" in k.checks}
    for name, fields in FIELD_RECORDS.items():
        assert fields == tuple(f.attr for f in gated[name].fields)
    assert set(RECORD_FILTERS) == {n for n, k in gated.items() if "records_at_least" in k.checks}
    for name, filters in RECORD_FILTERS.items():
        assert dict(filters) == filter_types(gated[name])
    assert set(EACH_PARTNER_RECORDS) == {
        n for n, k in gated.items() if "each_partner_has" in k.checks
    }
    assert CHECKS["fields_recorded"].params["record"].choices == tuple(FIELD_RECORDS)
    assert CHECKS["records_at_least"].params["record"].choices == tuple(RECORD_FILTERS)
    assert CHECKS["each_partner_has"].params["record"].choices == EACH_PARTNER_RECORDS


def test_every_check_a_kind_names_exists() -> None:
    for k in KINDS.values():
        assert set(k.checks) <= set(CHECKS), k.kind
        assert set(k.checks) <= set(gates.EVALUATORS), k.kind


def test_the_gate_tables_are_the_kinds_tables() -> None:
    gated = by_gate_name()
    assert set(gates.SINGLE_TABLES) | set(gates.MANY_TABLES) == set(gated)
    for name, table in {**gates.SINGLE_TABLES, **gates.MANY_TABLES}.items():
        assert table is m.evidence_table(gated[name].kind)
        assert (name in gates.SINGLE_TABLES) == gated[name].single


def test_the_sweeps_expected_records_are_the_kinds_expected() -> None:
    gated = by_gate_name()
    assert tuple(sweep.RECORDS) == EXPECTED_RECORDS
    for name, (table, column, label) in sweep.RECORDS.items():
        expected = gated[name].expected
        assert expected is not None
        assert table is m.evidence_table(gated[name].kind)
        assert (column, label) == (expected.date_column, expected.label)
        assert column in table.model_fields


def test_the_ocel_object_types_are_the_kinds_export_types() -> None:
    exported = [k for k in KINDS.values() if k.export is not None]
    assert [t.name for t in OBJECT_TYPES] == [k.export.name for k in exported if k.export]
    for t, k in zip(OBJECT_TYPES, exported, strict=True):
        assert t.model is m.evidence_table(k.kind)
        for _name, column, _type in t.attributes:
            assert column in t.model.model_fields, (t.name, column)


def test_the_validator_accepts_exactly_the_expected_records_for_schedules() -> None:
    from mspflow.definition import parse_workflow
    from mspflow.errors import DefinitionError
    from tests.definition.test_loader import MINI

    text = MINI.read_text(encoding="utf-8")
    assert "record: meeting}" in text
    for name in by_gate_name():
        changed = text.replace("record: meeting}", f"record: {name}}}")
        try:
            parse_workflow(changed, "mini.yaml")
        except DefinitionError as exc:
            assert name not in EXPECTED_RECORDS, (name, exc.lines())
            assert any("a schedule can expect" in line for line in exc.lines())
        else:
            assert name in EXPECTED_RECORDS, name
