"""Versions of the definition file format, and the named migrations between them.

A definition says which format it is written in (``mspflow: 1``). A stored
definition of an older format is migrated, step by step, before it is parsed:
``MIGRATIONS[n]`` turns the data of format ``n`` into format ``n + 1``. Each
migration is a plain function with a name that says what changed; it takes and
returns plain data (mappings, lists, scalars) and never fails on data its format
allowed. The definition keeps the content hash it was stored under, for that
hash is what its partnerships are pinned to.

Format 1 is the first; no migration exists yet. Adding format 2: bump
:data:`FORMAT_VERSION` (in :mod:`.loader`), write ``v1_to_v2`` here and register
it as ``MIGRATIONS[1]``; ``tests/definition/test_formats.py`` runs every one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mspflow.errors import DefinitionError, Problem

__all__ = ["MIGRATIONS", "migrate"]

Migration = Callable[[dict[str, Any]], dict[str, Any]]

#: Format n -> the function that turns its data into format n + 1.
MIGRATIONS: dict[int, Migration] = {}


def migrate(
    data: dict[str, Any],
    *,
    to: int,
    name: str = "<definition>",
    migrations: Mapping[int, Migration] | None = None,
) -> dict[str, Any]:
    """``data`` brought from its own format to format ``to``."""
    steps = MIGRATIONS if migrations is None else migrations
    version = data.get("mspflow", to)
    if not isinstance(version, int) or isinstance(version, bool) or version > to or version < 1:
        raise DefinitionError(
            [Problem(name, 1, f"definition format {version!r} is not known to this mspflow")]
        )
    while version < to:
        step = steps.get(version)
        if step is None:
            raise DefinitionError(
                [
                    Problem(
                        name, 1, f"no migration from definition format {version} to {version + 1}"
                    )
                ]
            )
        data = step(dict(data))
        version += 1
        data["mspflow"] = version
    return data
