"""The hash chain, pinned from outside: a known-answer vector, and every check of verify caught.

The vector fixes what an event's hash *is* (which fields, which encoding), so
leaving a field out of :data:`mspflow.history.HASHED_FIELDS` or changing the
encoding fails here even though the code would still agree with itself. The
tamper tests edit each hashed column of a stored event in the database (with
the append-only triggers dropped, as someone with write access would) and need
both verifiers, :func:`mspflow.history.verify` and ``audit verify``'s
:func:`mspflow.audit.verify.verify_chain`, to name that event. The gap and link
tests repair everything but the one thing each check looks at, so that no other
check can stand in for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import col, select

from mspflow import history
from mspflow.audit.verify import FIELD_ORDER, row_hash, verify_chain
from mspflow.errors import AuditFailure
from mspflow.store import make_engine, read_session, write_session
from mspflow.store import models as m
from mspflow.store.migrations.versions.v0001_initial import DROP_APPEND_ONLY
from tests.conftest import Backend

pytestmark = pytest.mark.timeout(120)

#: One event with every hashed field set: non-ASCII text (Latin, Cyrillic, CJK,
#: an emoji), quotes and a backslash, a waiver list given out of order, nested
#: evidence and data with numbers, booleans and null.
VECTOR: dict[str, Any] = {
    "partnership": "água-limpa",
    "at": datetime(2027, 3, 28, 1, 30, 0, 123456, tzinfo=timezone.utc),
    "actor": "zoë",
    "role": "secretariat",
    "kind": "advance",
    "trigger": "advance",
    "from_state": "getting-started",
    "to_state": "agenda-setting-and-scoping",
    "reason": 'Ко-дизайн 水 😀 "quoted" back\\slash',  # noqa: RUF001 (Cyrillic on purpose)
    "waived": ["lead-and-support", "case-for-partnering"],
    "evidence": {
        "challenge-framed": {"task": "1.1", "found": "recorded", "fields": ["challenge"]},
        "sdg-linked": {"task": "1.1", "count": 2, "sdg_target": [3, 1]},
    },
    "definition": "msp-12-step@1#0123456789abcdef",
    # ``v``: the layout of the data (history.DATA_VERSION), as history.append stores it.
    "data": {"note": "ñandú", "nested": {"b": [1, 2.5, None, True], "a": "x"}, "v": 1},
}

#: The columns history.append stores for VECTOR as the first event.
VECTOR_STORED: dict[str, Any] = {
    "seq": 1,
    "partnership": "água-limpa",
    "at": "2027-03-28T01:30:00.123456Z",
    "actor": "zoë",
    "role": "secretariat",
    "kind": "advance",
    "trigger": "advance",
    "from_state": "getting-started",
    "to_state": "agenda-setting-and-scoping",
    "reason": 'Ко-дизайн 水 😀 "quoted" back\\slash',  # noqa: RUF001 (Cyrillic on purpose)
    "waived": '["case-for-partnering","lead-and-support"]',
    "evidence": (
        '{"challenge-framed":{"fields":["challenge"],"found":"recorded","task":"1.1"},'
        '"sdg-linked":{"count":2,"sdg_target":[3,1],"task":"1.1"}}'
    ),
    "definition": "msp-12-step@1#0123456789abcdef",
    "data": '{"nested":{"a":"x","b":[1,2.5,null,true]},"note":"ñandú","v":1}',
    "prev_hash": "0" * 64,
}

#: The vector's hash, and the byte string hashed (keys sorted, no spaces, UTF-8). The
#: canonical text is the byte string hashed: keys sorted, no spaces, UTF-8.
VECTOR_CANONICAL = (
    '{"actor":"zoë","at":"2027-03-28T01:30:00.123456Z",'
    '"data":"{\\"nested\\":{\\"a\\":\\"x\\",\\"b\\":[1,2.5,null,true]},\\"note\\":\\"ñandú\\",\\"v\\":1}",'
    '"definition":"msp-12-step@1#0123456789abcdef",'
    '"evidence":"{\\"challenge-framed\\":{\\"fields\\":[\\"challenge\\"],\\"found\\":'
    '\\"recorded\\",\\"task\\":\\"1.1\\"},\\"sdg-linked\\":{\\"count\\":2,\\"sdg_target\\":'
    '[3,1],\\"task\\":\\"1.1\\"}}",'
    '"from_state":"getting-started","kind":"advance","partnership":"água-limpa",'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"reason":"Ко-дизайн 水 😀 \\"quoted\\" back\\\\slash","role":"secretariat","seq":1,'  # noqa: RUF001
    '"to_state":"agenda-setting-and-scoping","trigger":"advance",'
    '"waived":"[\\"case-for-partnering\\",\\"lead-and-support\\"]"}'
).encode()
VECTOR_HASH = "1cb82ec086edfaba1c4448e3a93c342685d502d1903fd81e401bca9422d0260f"

#: Every column the hash covers, spelled out here so that a field dropped from
#: HASHED_FIELDS cannot also drop its tamper test.
COVERED = (
    "seq", "partnership", "at", "actor", "role", "kind", "trigger", "from_state",
    "to_state", "reason", "waived", "evidence", "definition", "data", "prev_hash",
)  # fmt: skip


@pytest.fixture
def store(backend: Backend) -> Iterator[Engine]:
    """An empty database at the newest schema."""
    url = backend.new_url()
    backend.with_schema(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def append(engine: Engine, **fields: Any) -> m.HistoryEvent:
    with write_session(engine) as s:
        return history.append(s, **fields)


def stored(engine: Engine) -> list[m.HistoryEvent]:
    with read_session(engine) as s:
        return list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))


def chain(engine: Engine, events: int = 4) -> list[m.HistoryEvent]:
    """``events`` events like VECTOR, each different, every field set."""
    for n in range(events):
        append(
            engine,
            **{
                **VECTOR,
                "at": VECTOR["at"] + timedelta(days=n),
                "reason": f"{VECTOR['reason']} #{n}",
                "data": {**VECTOR["data"], "n": n},
            },
        )
    return stored(engine)


def tamper(engine: Engine, *statements: str, **params: Any) -> None:
    """Change stored rows as someone with write access would: triggers dropped first."""
    with engine.begin() as conn:
        for statement in (*DROP_APPEND_ONLY[engine.dialect.name], *statements):
            conn.execute(text(statement), params)


def rehash(engine: Engine, seq: int, prev_hash: str) -> str:
    """Give event ``seq`` the prev_hash given and a hash matching its content; return it."""
    event = next(e for e in stored(engine) if e.seq == seq)
    fields = {name: getattr(event, name) for name in history.HASHED_FIELDS}
    fields["prev_hash"] = prev_hash
    digest = history.compute_hash(fields)
    tamper(
        engine,
        "UPDATE history_event SET prev_hash = :p, hash = :h WHERE seq = :s",
        p=prev_hash,
        h=digest,
        s=seq,
    )
    return digest


def breaks(engine: Engine) -> list[str]:
    """What each verifier says about the stored chain (``[]`` when both accept it)."""
    found = [str(b) for b in history.verify(stored(engine))]
    try:
        verify_chain(engine, chunk=2)
    except AuditFailure as exc:
        found.append(exc.message)
    return found


# --------------------------------------------------------------------------- known answer


def test_known_answer_vector() -> None:
    """Both encoders (history's and audit verify's fast one) give the vector's bytes and hash."""
    assert history.canonical(VECTOR_STORED) == VECTOR_CANONICAL
    assert history.compute_hash(VECTOR_STORED) == VECTOR_HASH
    assert row_hash([VECTOR_STORED[name] for name in FIELD_ORDER]) == VECTOR_HASH


def test_known_answer_vector_as_stored(store: Engine) -> None:
    """history.append on a real database stores the vector's event with the vector's hash."""
    event = append(store, **VECTOR)
    assert (event.seq, event.prev_hash, event.hash) == (1, history.GENESIS, VECTOR_HASH)
    [row] = stored(store)
    assert {name: getattr(row, name) for name in COVERED} == VECTOR_STORED
    assert row.hash == VECTOR_HASH
    assert verify_chain(store).head.hash == VECTOR_HASH


def test_the_hash_covers_exactly_these_fields() -> None:
    assert sorted(history.HASHED_FIELDS) == sorted(COVERED)


# --------------------------------------------------------------------------- tampering


def _edited(field: str, event: m.HistoryEvent) -> Any:
    """A plausible forgery of ``field`` of ``event``, different from what is stored."""
    forged: dict[str, Any] = {
        "seq": 40,
        "partnership": "other-msp",
        "at": "2027-01-01T00:00:00.000000Z",
        "actor": "mallory",
        "role": "auditor",
        "kind": "revisit",
        "trigger": "revisit_to_1",
        "from_state": "planning",
        "to_state": "getting-started",
        "reason": "nothing to see",
        "waived": "[]",  # the waiver hidden
        "evidence": "{}",  # the evidence taken away
        "definition": "msp-12-step@1#ffffffffffffffff",
        "data": '{"note":"forged"}',
        "prev_hash": "f" * 64,
    }
    assert forged[field] != getattr(event, field)
    return forged[field]


@pytest.mark.parametrize("field", COVERED)
def test_editing_any_hashed_field_is_caught_at_that_event(store: Engine, field: str) -> None:
    events = chain(store)
    assert breaks(store) == []
    tamper(
        store,
        f"UPDATE history_event SET {field} = :v WHERE seq = 2",
        v=_edited(field, events[1]),
    )
    found = breaks(store)
    assert len(found) == 2, found
    problem = {
        "seq": "event 2: sequence number 2 is missing (found 3)",
        "prev_hash": "event 2: does not link to the event before it",
    }.get(field, "event 2: its content does not match its hash")
    assert found[0].startswith(problem), found
    assert problem in found[1], found


# --------------------------------------------------------------------------- each check


def test_a_gap_alone_is_caught(store: Engine) -> None:
    """Event 2 deleted and the rest relinked with fresh hashes: only the numbering shows it."""
    events = chain(store)
    tamper(store, "DELETE FROM history_event WHERE seq = 2")
    third = rehash(store, 3, events[0].hash)
    rehash(store, 4, third)
    found = breaks(store)
    assert len(found) == 2, found
    assert found[0] == (
        "event 2: sequence number 2 is missing (found 3); an event was deleted, inserted or "
        "reordered"
    )
    assert "history event 2: sequence number 2 is missing (found 3)" in found[1]


def test_events_out_of_order_are_caught(store: Engine) -> None:
    """Events read in another order than their numbers (as a reordering would leave them)."""
    events = chain(store)
    assert [str(b) for b in history.verify([events[0], events[2], events[1], events[3]])] == [
        "event 2: sequence number 2 is missing (found 3); an event was deleted, inserted or "
        "reordered"
    ]
    assert [str(b) for b in history.verify([events[1], events[0]])] == [
        "event 1: sequence number 1 is missing (found 2); an event was deleted, inserted or "
        "reordered"
    ]


def test_a_broken_link_alone_is_caught(store: Engine) -> None:
    """Event 3 points elsewhere but its own hash matches its content: only the link shows it."""
    chain(store)
    third = rehash(store, 3, "e" * 64)
    rehash(store, 4, third)
    found = breaks(store)
    assert len(found) == 2, found
    assert found[0] == (
        "event 3: does not link to the event before it (prev_hash differs); "
        "an event before it was changed or inserted"
    )
    assert "history event 3: does not link to the event before it" in found[1]


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(store: Engine) -> None:
    events = chain(store)
    rehash(store, 2, events[0].hash)  # unchanged so far: the same content, the same hash
    assert breaks(store) == []
    tamper(store, "UPDATE history_event SET actor = 'mallory' WHERE seq = 2")
    rehash(store, 2, events[0].hash)
    found = breaks(store)
    assert found[0].startswith("event 3: does not link"), found
    assert "history event 3: does not link" in found[1], found
