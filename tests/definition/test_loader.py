"""The loader: strict YAML, one problem per mistake, each with file and line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from mspflow.definition import load_workflow, parse_workflow
from mspflow.definition.loader import SCHEMA
from mspflow.definition.yamlsafe import load_yaml
from mspflow.errors import DefinitionError
from tests.conftest import BUNDLED

HERE = Path(__file__).parent
BROKEN = sorted((HERE / "broken").glob("*.yaml"))
MINI = HERE / "valid" / "mini.yaml"
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "mspflow/definition/workflow.schema.json"

# For each broken fixture: the line and the words its first-class problem must carry.
EXPECTED: dict[str, tuple[int, str]] = {
    "bad-check-param": (21, "'challange' is not a valid value of 'fields'"),
    "duplicate-key": (6, "duplicate key 'title'"),
    "duplicate-task-id": (27, "duplicate task id '1.1'"),
    "loose-cadence": (49, "cadence 'quarterly' is less frequent than the declared minimum"),
    "missing-key": (34, "missing required key 'module'"),
    "no-final-reachable": (40, "no final state can be reached"),
    "trap-step": (22, "step 2 'work' is not final but has no way out"),
    "unknown-check": (32, "unknown check 'meeting_happened'"),
    "unknown-key": (25, "unknown key 'colour'"),
    "unknown-step": (44, "unknown step or state '9'"),
    "unknown-task": (30, "unknown task '2.9'"),
    "unreachable-step": (22, "step 2 'work' cannot be reached"),
    "wrong-type": (22, "'number' in the workflow, 'steps' item 2 must be a whole number"),
    "yaml-syntax": (9, "YAML syntax"),
    "yes-is-not-bool": (33, "filter 'with_minutes' cannot be 'yes'"),
}


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in BROKEN} == set(EXPECTED)


def test_mini_is_valid() -> None:
    wf = load_workflow(MINI)
    assert wf.name == "mini" and wf.version == "1"


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_definition_names_file_line_and_key(path: Path) -> None:
    line, words = EXPECTED[path.stem]
    with pytest.raises(DefinitionError) as info:
        load_workflow(path)
    problems = info.value.problems
    assert any(p.line == line and words in p.message for p in problems), info.value.lines()
    for text in info.value.lines():
        assert text.startswith(f"{path}:"), text
        assert "\n" not in text


def test_all_problems_are_reported_at_once() -> None:
    text = MINI.read_text()
    text = text.replace("name: Work\n", "name: Work\n    colour: blue\n")
    text = text.replace("check: records_at_least", "check: nope")
    text = text.replace("to: 1, reason: required", "to: 9, reason: required")
    with pytest.raises(DefinitionError) as info:
        parse_workflow(text, "three.yaml")
    messages = " | ".join(info.value.lines())
    for words in ("unknown key 'colour'", "unknown check 'nope'", "unknown step or state '9'"):
        assert words in messages


def test_yaml_keeps_yes_no_on_off_and_dotted_numbers_as_text() -> None:
    data, problems = load_yaml("a: [on, off, yes, no, 1.10, 3.4, true, 7]\n", "x.yaml")
    assert problems == []
    assert data["a"] == ["on", "off", "yes", "no", "1.10", "3.4", True, 7]


def test_content_hash_ignores_layout_but_not_meaning() -> None:
    text = MINI.read_text()
    base = parse_workflow(text).content_hash
    assert parse_workflow("# a new comment\n" + text).content_hash == base
    assert parse_workflow(text.replace("title: Three steps", "title: 3 steps")).content_hash != base


def _object_defs() -> dict[str, dict[str, object]]:
    schema = json.loads(SCHEMA_FILE.read_text())
    defs = dict(schema["$defs"])
    defs["workflow"] = {k: schema[k] for k in ("properties", "required")}
    return defs


def test_json_schema_and_parser_accept_the_same_keys() -> None:
    defs = _object_defs()
    assert set(defs) == set(SCHEMA)
    for kind, keys in SCHEMA.items():
        assert set(defs[kind]["properties"]) == set(keys), kind  # type: ignore[arg-type]
        required = {k for k, (_, req) in keys.items() if req}
        assert set(defs[kind]["required"]) == required, kind  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [*BUNDLED, MINI], ids=lambda p: p.name)
def test_valid_files_satisfy_the_json_schema(path: Path) -> None:
    data, _ = load_yaml(path.read_text(), str(path))
    jsonschema.validate(json.loads(json.dumps(data)), json.loads(SCHEMA_FILE.read_text()))


def test_json_schema_rejects_an_unknown_key() -> None:
    data, _ = load_yaml((HERE / "broken" / "unknown-key.yaml").read_text(), "x")
    with pytest.raises(jsonschema.ValidationError, match=re.escape("'colour'")):
        jsonschema.validate(json.loads(json.dumps(data)), json.loads(SCHEMA_FILE.read_text()))
