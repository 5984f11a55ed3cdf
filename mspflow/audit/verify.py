"""Recomputing the hash chain, streamed in sequence order, optionally against an anchor.

The chain alone shows that no event was edited, deleted, inserted or reordered
(:func:`mspflow.history.verify`). It cannot show that the whole history was
replaced by a new one with freshly computed hashes, nor that the newest events
were cut off; an *anchor* (a ``SEQ:HASH`` pair an auditor noted earlier and
kept elsewhere) can. Rows are read in chunks, so a history of millions of
events is checked in constant memory.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Engine, select

from mspflow import history
from mspflow.errors import AuditFailure, UsageError
from mspflow.store.models import HistoryEvent

__all__ = ["FIELD_ORDER", "Anchor", "Verified", "head_anchor", "row_hash", "verify_chain"]

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
                hint="use an anchor as the audit gave it, e.g. 42:<64 hex digits>",
                field="anchor",
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
    """The hashed fields in the order they are encoded (sorted by name), then the hash."""
    table = HistoryEvent.__table__  # type: ignore[attr-defined]
    return [table.c[name] for name in (*FIELD_ORDER, "hash")]


def head_anchor(engine: Engine) -> Anchor:
    """The newest event as an anchor (``0`` and the genesis hash for an empty history)."""
    from mspflow.store import read_session

    with read_session(engine) as s:
        seq, digest = history.head(s)
    return Anchor(seq, digest)


#: The encoding of :func:`mspflow.history.canonical` (sorted keys, no spaces,
#: UTF-8), spelled out as one template: ``json.dumps`` with options builds an
#: encoder per call, which costs more than the hashing. A test keeps the two equal.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
FIELD_ORDER = tuple(sorted(history.HASHED_FIELDS))
_TEMPLATE = "{" + ",".join(encode_basestring(name) + ":%s" for name in FIELD_ORDER) + "}"
_SEQ = FIELD_ORDER.index("seq")
_PREV = FIELD_ORDER.index("prev_hash")


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        return encode_basestring(value)
    if type(value) is int:
        return int.__repr__(value)
    return _ENCODER.encode(value)


def row_hash(values: Sequence[Any]) -> str:
    """The hash of one event from the values of its hashed fields in :data:`FIELD_ORDER`."""
    encoded = _TEMPLATE % tuple(map(_json, values))
    return hashlib.sha256(encoded.encode()).hexdigest()


def _check(rows: Iterable[Sequence[Any]], anchor: Anchor | None) -> tuple[int, Anchor, str | None]:
    """(events read, last event, the first problem or ``None``), stopping at the problem.

    The checks and their order are those of :func:`mspflow.history.verify`:
    sequence numbers run 1, 2, 3 ... without gaps, each event links to the hash
    of the one before, and each hash matches the event's fields. An anchor that
    names an event whose hash differs is reported where that event stands.
    """
    expected, prev = 1, history.GENESIS
    count, last = 0, Anchor(0, history.GENESIS)
    for row in rows:
        seq, digest = row[_SEQ], row[-1]
        count += 1
        if seq != expected:
            what = "missing" if seq > expected else "out of order"
            return (
                count,
                last,
                (
                    f"event {expected}: sequence number {expected} is {what} (found {seq}); "
                    "an event was deleted, inserted or reordered"
                ),
            )
        if row[_PREV] != prev:
            return (
                count,
                last,
                (
                    f"event {seq}: does not link to the event before it (prev_hash differs); "
                    "an event before it was changed or inserted"
                ),
            )
        if row_hash(row[:-1]) != digest:
            return (
                count,
                last,
                f"event {seq}: its content does not match its hash; the row was edited",
            )
        if anchor is not None and seq == anchor.seq and digest != anchor.hash:
            return (
                count,
                last,
                (
                    f"event {seq} does not match the anchor {_short(anchor)}: "
                    "the history up to it was rewritten"
                ),
            )
        prev, last, expected = digest, Anchor(seq, digest), expected + 1
    return count, last, None


def verify_chain(engine: Engine, *, anchor: Anchor | None = None, chunk: int = CHUNK) -> Verified:
    """Check every event; raise :class:`AuditFailure` naming the first one that fails."""
    table = HistoryEvent.__table__  # type: ignore[attr-defined]
    query = select(*_columns()).order_by(table.c.seq)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk).execute(query)
        count, last, problem = _check(_tuples(result), anchor)
    hint = "the events before it verify; compare the database with a backup"
    if problem is not None:
        raise AuditFailure(f"history {problem}", hint=hint)
    if anchor is not None and anchor.seq > last.seq:
        raise AuditFailure(
            f"history anchor {_short(anchor)} is beyond the newest event "
            f"({last.seq}): events were removed or the history was replaced",
            hint="compare the database with a backup taken before the anchor",
        )
    if anchor is not None and anchor.seq == 0 and anchor.hash != history.GENESIS:
        raise AuditFailure(f"history anchor {_short(anchor)} is not a valid start of a chain")
    return Verified(count, last, anchor)


def _tuples(result: Any) -> Iterator[Sequence[Any]]:
    for part in result.partitions():
        yield from part


def _short(anchor: Anchor) -> str:
    return f"{anchor.seq}:{anchor.hash[:16]}"
