"""The hostile-input corpus: one module per category, each a list of :class:`Case`.

A case is a value (text for command-line surfaces, bytes for file surfaces)
and what must happen where it lands. ``refuse`` names the kinds of input that
must turn it away (a documented non-zero exit, never 1, one line, nothing
written); on every other surface it is run on, the value may be accepted, but
it must never crash, print a traceback or leave a half-written database.
``accept`` names kinds that must take it (exit 0): a UTF-8 BOM is what
spreadsheets write, not an attack.

Kinds of input: ``text`` (free text), ``line`` (a name or title), ``user`` (a user name), ``email``,
``ref`` (a partnership reference), ``slug``, ``sdg``, ``number``, ``days``
(a day count), ``daylist``, ``date``, ``time``, ``zone``, ``db`` (a database
URL or path), ``output`` (a file to write), ``outdir`` (a folder to write files into),
``import-yaml``, ``import-csv``,
``definition`` (a workflow definition file).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

__all__ = ["CATEGORIES", "Case", "cases"]

CATEGORIES = (
    "encodings",
    "bom",
    "nulls",
    "aliases",
    "tags",
    "nesting",
    "huge",
    "formulas",
    "names",
    "numbers",
    "dates",
    "zones",
    "urls",
    "paths",
)


@dataclass(frozen=True)
class Case:
    label: str
    value: str | bytes
    kinds: frozenset[str]
    refuse: frozenset[str] = field(default_factory=frozenset)
    accept: frozenset[str] = field(default_factory=frozenset)


def case(
    label: str,
    value: str | bytes,
    kinds: str,
    *,
    refuse: str | None = None,
    accept: str = "",
) -> Case:
    """A case run on ``kinds`` (space-separated); refused on ``refuse`` (default: all of them)."""
    on = frozenset(kinds.split())
    return Case(
        label,
        value,
        on,
        on if refuse is None else frozenset(refuse.split()),
        frozenset(accept.split()),
    )


def cases() -> list[tuple[str, Case]]:
    """Every case of every category, as (category, case)."""
    found = []
    for name in CATEGORIES:
        module = importlib.import_module(f"{__name__}.{name}")
        found.extend((name, c) for c in module.CASES)
    return found
