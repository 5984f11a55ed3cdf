"""The append-only, hash-chained history.

Every event carries ``prev_hash`` (the hash of the event before it, across the
whole database) and ``hash`` = SHA-256 of a canonical JSON encoding of the
event's fields *including* ``prev_hash``. Editing, deleting, inserting or
reordering a row breaks the chain at that row; a rewrite from scratch with
recomputed hashes is caught by comparing with an anchor kept outside.

Appends are serialized: on SQLite by the write transaction's ``BEGIN
IMMEDIATE``; on PostgreSQL by a transaction-level advisory lock. The chain
therefore never forks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select, text
from sqlmodel import Session

from mspflow.store.models import HistoryEvent

__all__ = [
    "DATA_VERSION",
    "GENESIS",
    "HASHED_FIELDS",
    "Break",
    "append",
    "as_dict",
    "canonical",
    "compute_hash",
    "format_instant",
    "head",
    "verify",
]

GENESIS = "0" * 64

#: The fields covered by the hash, in the order they are documented. The
#: encoding sorts keys, so the order here is for readers only.
HASHED_FIELDS = (
    "seq", "partnership", "at", "actor", "role", "kind", "trigger", "from_state",
    "to_state", "reason", "waived", "evidence", "definition", "data", "prev_hash",
)  # fmt: skip

_ADVISORY_KEY = 0x6D7366  # "msf": one lock for the whole chain

#: The layout of an event's ``data``, kept in it as ``v``: a reader that meets a
#: newer one knows it may not understand every key. Events written before the
#: layout was numbered carry no ``v`` and have layout 1's keys.
DATA_VERSION = 1


def format_instant(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The byte string that is hashed: sorted keys, no spaces, UTF-8."""
    payload = {name: fields[name] for name in HASHED_FIELDS}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_TABLE: Any = HistoryEvent.__table__  # type: ignore[attr-defined]
#: Core statements on the hot path of every move: built once, compiled once.
_HEAD = select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1)
_INSERT = insert(_TABLE)


def head(session: Session) -> tuple[int, str]:
    """The last event's (seq, hash), or (0, GENESIS) for an empty history."""
    row = session.execute(_HEAD).first()
    return (row[0], row[1]) if row else (0, GENESIS)


def append(
    session: Session,
    *,
    partnership: str,
    at: datetime,
    actor: str,
    role: str,
    kind: str,
    definition: str,
    trigger: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    waived: Iterable[str] = (),
    evidence: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> HistoryEvent:
    """Add one event at the head of the chain, inside the caller's transaction."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
    last_seq, last_hash = head(session)
    fields: dict[str, Any] = {
        "seq": last_seq + 1,
        "partnership": partnership,
        "at": format_instant(at),
        "actor": actor,
        "role": role,
        "kind": kind,
        "trigger": trigger,
        "from_state": from_state,
        "to_state": to_state,
        "reason": reason,
        "waived": _dumps(sorted(waived)),
        "evidence": _dumps(evidence or {}),
        "definition": definition,
        "data": _dumps({**(data or {}), "v": DATA_VERSION}),
        "prev_hash": last_hash,
    }
    fields["hash"] = compute_hash(fields)
    session.execute(_INSERT, fields)  # Core: the row is written once and never changed
    return HistoryEvent(**fields)


def as_dict(e: HistoryEvent) -> dict[str, Any]:
    """An event with its JSON fields decoded, under the keys of the stable JSON form
    (``from`` and ``to`` for the states), as exports and ``--json`` write it."""
    return {
        "seq": e.seq,
        "partnership": e.partnership,
        "at": e.at,
        "actor": e.actor,
        "role": e.role,
        "kind": e.kind,
        "trigger": e.trigger,
        "from": e.from_state,
        "to": e.to_state,
        "reason": e.reason,
        "waived": json.loads(e.waived),
        "evidence": json.loads(e.evidence),
        "definition": e.definition,
        "data": json.loads(e.data),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


@dataclass(frozen=True)
class Break:
    """Where the chain stops verifying, and why."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.problem}"


def _fields(event: HistoryEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in HASHED_FIELDS}


def verify(events: Iterable[HistoryEvent]) -> Iterator[Break]:
    """Yield the first break in ``events`` (in seq order), if any.

    Checks that sequence numbers run 1, 2, 3 ... without gaps, that each event
    links to the hash of the one before, and that each hash matches its fields.
    """
    expected_seq, prev = 1, GENESIS
    for event in events:
        if event.seq != expected_seq:
            what = "missing" if event.seq > expected_seq else "out of order"
            yield Break(
                expected_seq,
                f"sequence number {expected_seq} is {what} "
                f"(found {event.seq}); an event was deleted, inserted or reordered",
            )
            return
        if event.prev_hash != prev:
            yield Break(
                event.seq,
                "does not link to the event before it "
                "(prev_hash differs); an event before it was changed or inserted",
            )
            return
        if compute_hash(_fields(event)) != event.hash:
            yield Break(event.seq, "its content does not match its hash; the row was edited")
            return
        prev = event.hash
        expected_seq += 1
