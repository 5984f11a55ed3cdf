"""Recomputing the hash chain, streamed in sequence order, optionally against an anchor.

The chain alone shows that no event was edited, deleted, inserted or reordered
(:func:`mspflow.history.verify`). It cannot show that the whole history was
replaced by a new one with freshly computed hashes, nor that the newest events
were cut off; an *anchor* (a ``SEQ:HASH`` pair an auditor noted earlier and
kept elsewhere) can. Rows are read in chunks, so a history of millions of
events is checked in constant memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from mspflow import history
from mspflow.errors import AuditFailure, UsageError
from mspflow.store.models import HistoryEvent

__all__ = ["Anchor", "Verified", "head_anchor", "verify_chain"]

CHUNK = 10_000
_ANCHOR = re.compile(r"(\d+):([0-9a-f]{64})")


@dataclass(frozen=True)
class Anchor:
    """A point of the chain: an event's sequence number and hash."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        found = _ANCHOR.fullmatch(text.strip().lower())
        if found is None:
            raise UsageError(
                f"anchor '{text}' is not SEQ:HASH",
                hint="use what 'mspflow audit anchor' printed, e.g. 42:<64 hex digits>",
            )
        return cls(int(found.group(1)), found.group(2))

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


@dataclass(frozen=True)
class Verified:
    """What a successful verification covered."""

    events: int
    head: Anchor
    anchor: Anchor | None = None


def _columns() -> list[Any]:
    table = HistoryEvent.__table__  # type: ignore[attr-defined]
    return [table.c[name] for name in (*history.HASHED_FIELDS, "hash")]


def head_anchor(engine: Engine) -> Anchor:
    """The newest event as an anchor (``0`` and the genesis hash for an empty history)."""
    from mspflow.store import read_session

    with read_session(engine) as s:
        seq, digest = history.head(s)
    return Anchor(seq, digest)


class _Tracked:
    """Passes rows through, counting them and noting where they disagree with the anchor."""

    def __init__(self, rows: Iterable[Any], anchor: Anchor | None) -> None:
        self.rows = rows
        self.anchor = anchor
        self.count = 0
        self.last = Anchor(0, history.GENESIS)
        self.mismatch: int | None = None

    def __iter__(self) -> Iterator[Any]:
        for row in self.rows:
            self.count += 1
            self.last = Anchor(row.seq, row.hash)
            a = self.anchor
            if a is not None and row.seq == a.seq and row.hash != a.hash and self.mismatch is None:
                self.mismatch = row.seq
            yield row


def verify_chain(engine: Engine, *, anchor: Anchor | None = None, chunk: int = CHUNK) -> Verified:
    """Check every event; raise :class:`AuditFailure` naming the first one that fails."""
    table = HistoryEvent.__table__  # type: ignore[attr-defined]
    query = select(*_columns()).order_by(table.c.seq)
    with engine.connect() as conn:
        tracked = _Tracked(conn.execution_options(yield_per=chunk).execute(query), anchor)
        broken = next(history.verify(tracked), None)
    if broken is not None and (tracked.mismatch is None or broken.seq <= tracked.mismatch):
        raise AuditFailure(
            f"history {broken}",
            hint="the events before it verify; compare the database with a backup",
        )
    if anchor is not None:
        if tracked.mismatch is not None:
            raise AuditFailure(
                f"history event {tracked.mismatch} does not match the anchor {_short(anchor)}: "
                "the history up to it was rewritten",
                hint="compare the database with a backup taken before the anchor",
            )
        if anchor.seq > tracked.last.seq:
            raise AuditFailure(
                f"history anchor {_short(anchor)} is beyond the newest event "
                f"({tracked.last.seq}): events were removed or the history was replaced",
                hint="compare the database with a backup taken before the anchor",
            )
        if anchor.seq == 0 and anchor.hash != history.GENESIS:
            raise AuditFailure(f"history anchor {_short(anchor)} is not a valid start of a chain")
    return Verified(tracked.count, tracked.last, anchor)


def _short(anchor: Anchor) -> str:
    return f"{anchor.seq}:{anchor.hash[:16]}"
