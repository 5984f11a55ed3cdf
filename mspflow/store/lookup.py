"""Finding a partnership by what a user calls it, and what the database says about races.

A partnership is named by its slug (``water-kch``) or its row id (``12``);
slugs are never all digits, so the two cannot be confused. Every operation
that takes a partnership from outside finds it here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from mspflow import inputs
from mspflow.errors import ConcurrentChange, NotFound
from mspflow.store import models as m

__all__ = [
    "concurrency_errors",
    "concurrent",
    "find",
    "may_name",
    "not_found",
    "row_id",
    "version_of",
]

_PARTNERSHIPS: Any = m.Partnership.__table__  # type: ignore[attr-defined]


def may_name(ref: str) -> bool:
    """Whether ``ref`` may name a partnership at all. A NUL (which PostgreSQL refuses
    in text) or an over-long value cannot, and is not sent to the database."""
    return "\x00" not in ref and len(ref) <= inputs.NAME_MAX


def row_id(ref: str) -> int | None:
    """The row id ``ref`` names, if it is one (slugs are never all digits); None for
    numbers no id column holds, which would overflow PostgreSQL's integer."""
    if re.fullmatch(r"[0-9]{1,10}", ref) and int(ref) <= inputs.INT_MAX:
        return int(ref)
    return None


def not_found(ref: str) -> NotFound:
    return NotFound(
        f"no partnership {inputs.shown(ref)}",
        hint="the portfolio lists every partnership",
        field="partnership",
    )


def find(session: Session, ref: str, *, for_update: bool = False) -> m.Partnership:
    """The partnership named by slug or row id; ``for_update`` holds its row lock
    (PostgreSQL) until the transaction ends, for writes decided on what was read."""
    if not may_name(ref):
        raise not_found(ref)
    rid = row_id(ref)
    with concurrency_errors(ref):  # waiting for the lock may end in a deadlock
        query = select(m.Partnership).where(m.Partnership.slug == ref)  # type: ignore[arg-type]
        if for_update:
            query = query.with_for_update()
        p: m.Partnership | None = session.scalars(query).first()
        if p is None and rid is not None:
            p = session.get(m.Partnership, rid, with_for_update=for_update)
    if p is None:
        raise not_found(ref)
    return p


def version_of(conn: Connection | Session, ref: str) -> tuple[int, str]:
    """The partnership's (version, workflow hash), in one Core SELECT.

    A write reads it before its transaction opens, and refuses to change the
    row unless it is still at this version: whatever was decided on a state
    someone changed meanwhile is not written.
    """
    table = _PARTNERSHIPS
    if not may_name(ref):
        raise not_found(ref)
    rid = row_id(ref)
    columns = (table.c.version, table.c.workflow_hash)
    row = conn.execute(select(*columns).where(table.c.slug == ref)).first()
    if row is None and rid is not None:
        row = conn.execute(select(*columns).where(table.c.id == rid)).first()
    if row is None:
        raise not_found(ref)
    return int(row[0]), str(row[1])


def concurrent(ref: str) -> ConcurrentChange:
    return ConcurrentChange(
        f"partnership {ref} was changed by someone else meanwhile; nothing was written",
        hint="look at it again and retry",
        field="partnership",
    )


#: SQLSTATEs after which the transaction is gone but a retry may succeed:
#: serialization_failure, deadlock_detected (PostgreSQL).
_RETRY_STATES = frozenset({"40001", "40P01"})


@contextmanager
def concurrency_errors(ref: str) -> Iterator[None]:
    """A deadlock or serialisation failure reported by the database, as ConcurrentChange."""
    try:
        yield
    except DBAPIError as exc:
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if state in _RETRY_STATES:
            raise concurrent(ref) from None
        raise
