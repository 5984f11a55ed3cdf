"""The ``--json`` output of every read command on the demo database is what it was.

The golden files in tests/golden/demo were recorded before the service layer
took over the commands (``python -m tests.golden``); keys may be added, none
renamed or removed, no value changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import invoke
from tests.golden import FOLDER, commands, differences, run_all


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("golden") / "demo.db"
    result = invoke("demo", "--db", str(db))
    assert result.exit_code == 0, result.output
    return run_all(invoke, db)


def test_every_read_command_has_a_golden_file() -> None:
    assert sorted(p.stem for p in FOLDER.glob("*.json")) == sorted(n for n, _ in commands())


@pytest.mark.parametrize("name", [n for n, _ in commands()])
def test_the_json_output_is_unchanged(name: str, outputs: dict[str, Any]) -> None:
    golden = json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8"))
    found = list(differences(golden, outputs[name]))
    assert not found, "\n".join(found[:20])


def test_the_comparison_sees_a_removed_key_and_a_changed_value() -> None:
    golden = {"id": "water", "step": {"number": 7}, "hash": "a" * 64, "list": [1, 2]}
    assert not list(differences(golden, {**golden, "extra": 1, "hash": "b" * 64}))
    assert list(differences(golden, {"id": "water", "step": {}, "hash": "a" * 64, "list": [1, 2]}))
    assert list(differences(golden, {**golden, "step": {"number": 8}}))
    assert list(differences(golden, {**golden, "hash": "not a hash"}))
    assert list(differences(golden, {**golden, "list": [1]}))
