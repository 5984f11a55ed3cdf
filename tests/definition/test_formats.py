"""Stored definitions: compiled quickly, migrated from older formats before they are built."""

from __future__ import annotations

from typing import Any

import pytest

from mspflow.definition import formats, loader
from mspflow.definition.loader import FORMAT_VERSION, compile_stored, parse_workflow
from mspflow.definition.render import to_dict
from mspflow.errors import DefinitionError
from tests.conftest import BUNDLED
from tests.definition.test_loader import MINI


def _same(a: Any, b: Any) -> None:
    assert to_dict(a) == to_dict(b)


@pytest.mark.parametrize("path", [*BUNDLED, MINI], ids=lambda p: p.name)
def test_the_fast_compile_builds_what_the_validating_loader_builds(path: Any) -> None:
    text = path.read_text(encoding="utf-8")
    checked = parse_workflow(text, str(path))
    fast = compile_stored(text, checked.content_hash, "<stored>")
    _same(fast, checked)
    assert fast.content_hash == checked.content_hash
    assert fast.transitions == tuple(
        type(t)(**{**t.__dict__, "line": 0}) for t in checked.transitions
    )


def test_an_older_format_is_migrated_before_it_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this mspflow reads format 2, in which ``title`` became ``heading``; a
    definition stored in format 1 is migrated by the named function and keeps its hash."""
    text = MINI.read_text(encoding="utf-8")
    stored = parse_workflow(text, "mini")
    seen: list[dict[str, Any]] = []

    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data)
        return {**data, "title": data["title"] + " (migrated)"}

    monkeypatch.setattr(formats, "MIGRATIONS", {1: v1_to_v2})
    monkeypatch.setattr(loader, "FORMAT_VERSION", 2)
    wf = compile_stored(text, stored.content_hash, "<stored mini>")
    assert len(seen) == 1 and seen[0]["mspflow"] == 1
    assert wf.title == stored.title + " (migrated)"
    assert wf.content_hash == stored.content_hash  # what its partnerships are pinned to


def test_a_format_without_a_migration_or_from_the_future_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = MINI.read_text(encoding="utf-8")
    monkeypatch.setattr(loader, "FORMAT_VERSION", 2)
    with pytest.raises(DefinitionError, match="no migration from definition format 1 to 2"):
        compile_stored(text, "h", "<stored>")
    monkeypatch.setattr(loader, "FORMAT_VERSION", 1)
    newer = text.replace(f"mspflow: {FORMAT_VERSION}", "mspflow: 7")
    assert newer != text
    with pytest.raises(DefinitionError, match="format 7 is not known"):
        compile_stored(newer, "h", "<stored>")


def test_the_shipped_format_needs_no_migration() -> None:
    assert FORMAT_VERSION == 1 and formats.MIGRATIONS == {}
