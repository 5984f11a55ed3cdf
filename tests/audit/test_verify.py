"""Chain verification on the real SQLite file, tampered with as an attacker would.

The history table refuses UPDATE and DELETE through its triggers; someone with
write access to the file drops them first, then edits, deletes, inserts or
reorders rows. ``audit verify`` must exit 8 naming the first broken event.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mspflow import history
from mspflow.audit.verify import Anchor, verify_chain
from mspflow.errors import AuditFailure
from mspflow.store import create_schema, make_engine
from tests.audit.conftest import Portfolio

DROP_TRIGGERS = (
    "DROP TRIGGER history_event_no_update",
    "DROP TRIGGER history_event_no_delete",
)
COLUMNS = (*history.HASHED_FIELDS, "hash")


def test_intact_history_verifies_and_anchor_names_the_head(portfolio: Portfolio) -> None:
    events = portfolio.events()
    out = portfolio.run("audit", "verify").output
    assert f"{len(events)} events" in out
    anchor = portfolio.run("audit", "anchor").output.strip()
    assert anchor == f"{events[-1].seq}:{events[-1].hash}"
    data = json.loads(portfolio.run("audit", "anchor", "--json").output)
    assert data == {"seq": events[-1].seq, "hash": events[-1].hash, "anchor": anchor}
    checked = json.loads(portfolio.run("audit", "verify", "--anchor", anchor, "--json").output)
    assert checked["ok"] and checked["events"] == len(events) and checked["anchor"] == anchor
    # An older anchor still holds once more events are added after it.
    middle = events[len(events) // 2]
    portfolio.run("audit", "verify", "--anchor", f"{middle.seq}:{middle.hash}")


def test_the_triggers_refuse_changes_until_dropped(portfolio: Portfolio) -> None:
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        portfolio.sql("UPDATE history_event SET reason = 'x' WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        portfolio.sql("DELETE FROM history_event WHERE seq = 3")


def failure(portfolio: Portfolio, *args: str) -> str:
    out = portfolio.run("audit", "verify", *args, code=8).output
    assert out.startswith("mspflow: history ") and out.count("\n") == 1, out
    return out


def test_edited_row(portfolio: Portfolio) -> None:
    portfolio.sql(
        *DROP_TRIGGERS, "UPDATE history_event SET reason = 'nothing to see' WHERE seq = 5"
    )
    assert "event 5: its content does not match its hash" in failure(portfolio)


#: A forged value for each hashed column (spelled out, so that a field left out
#: of HASHED_FIELDS keeps its test), and what audit verify says about it.
FORGED = {
    "seq": (99, "sequence number {seq} is missing"),
    "partnership": ("png", "its content does not match its hash"),
    "at": ("2027-01-01T00:00:00.000000Z", "its content does not match its hash"),
    "actor": ("mallory", "its content does not match its hash"),
    "role": ("auditor", "its content does not match its hash"),
    "kind": ("revisit", "its content does not match its hash"),
    "trigger": ("revisit_to_1", "its content does not match its hash"),
    "from_state": ("planning", "its content does not match its hash"),
    "to_state": ("closed", "its content does not match its hash"),
    "reason": ("nothing to see", "its content does not match its hash"),
    "waived": ("[]", "its content does not match its hash"),
    "evidence": ("{}", "its content does not match its hash"),
    "definition": ("msp-12-step@1#ffffffffffffffff", "its content does not match its hash"),
    "data": ('{"note":"forged"}', "its content does not match its hash"),
    "prev_hash": ("f" * 64, "does not link to the event before it"),
}


def test_every_hashed_field_has_a_forgery() -> None:
    assert sorted(FORGED) == sorted(history.HASHED_FIELDS)


@pytest.mark.parametrize("field", sorted(FORGED))
def test_edited_field_is_named(portfolio: Portfolio, field: str) -> None:
    """The waived step-1 advance (every field set) edited in one column: verify names it."""
    [event] = [e for e in portfolio.events() if e.kind == "advance" and e.waived != "[]"]
    value, problem = FORGED[field]
    assert value != getattr(event, field)
    portfolio.sql(
        *DROP_TRIGGERS,
        f"UPDATE history_event SET {field} = ? WHERE seq = {event.seq}",
        params=(value,),
    )
    out = failure(portfolio)
    assert f"event {event.seq}: " + problem.format(seq=event.seq) in out, out


def test_edited_row_with_its_own_hash_recomputed(portfolio: Portfolio) -> None:
    event = portfolio.events()[4]
    fields = {name: getattr(event, name) for name in history.HASHED_FIELDS}
    fields["actor"] = "mallory"
    portfolio.sql(
        *DROP_TRIGGERS,
        "UPDATE history_event SET actor = ?, hash = ? WHERE seq = 5",
        params=("mallory", history.compute_hash(fields)),
    )
    assert "event 6: does not link to the event before it" in failure(portfolio)


def test_deleted_row(portfolio: Portfolio) -> None:
    portfolio.sql(*DROP_TRIGGERS, "DELETE FROM history_event WHERE seq = 7")
    assert "event 7: sequence number 7 is missing (found 8)" in failure(portfolio)


def test_deleted_first_row(portfolio: Portfolio) -> None:
    portfolio.sql(*DROP_TRIGGERS, "DELETE FROM history_event WHERE seq = 1")
    assert "event 1: sequence number 1 is missing" in failure(portfolio)


def test_inserted_row(portfolio: Portfolio) -> None:
    """A forged event slipped in after event 4, later ones renumbered: event 6 no longer links."""
    events = portfolio.events()
    last = events[-1].seq
    before = events[3]
    forged = {name: getattr(events[4], name) for name in history.HASHED_FIELDS}
    forged.update(seq=5, reason="forged", prev_hash=before.hash)
    forged_hash = history.compute_hash(forged)
    shift = [
        f"UPDATE history_event SET seq = {seq + 1} WHERE seq = {seq}" for seq in range(last, 4, -1)
    ]
    cols = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    portfolio.sql(*DROP_TRIGGERS, *shift)
    portfolio.sql(
        f"INSERT INTO history_event ({cols}) VALUES ({marks})",
        params=(*[forged[c] for c in history.HASHED_FIELDS], forged_hash),
    )
    assert len(portfolio.events()) == last + 1
    assert "event 6: does not link to the event before it" in failure(portfolio)


def test_inserted_row_at_the_end_with_a_made_up_hash(portfolio: Portfolio) -> None:
    events = portfolio.events()
    head = events[-1]
    cols = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    values = {name: getattr(head, name) for name in COLUMNS}
    values.update(seq=head.seq + 1, prev_hash=head.hash, hash="f" * 64)
    portfolio.sql(
        f"INSERT INTO history_event ({cols}) VALUES ({marks})",
        params=tuple(values[c] for c in COLUMNS),
    )
    assert f"event {head.seq + 1}: its content does not match its hash" in failure(portfolio)


def test_reordered_rows(portfolio: Portfolio) -> None:
    """Events 4 and 5 swap places (their sequence numbers are exchanged)."""
    portfolio.sql(
        *DROP_TRIGGERS,
        "UPDATE history_event SET seq = -4 WHERE seq = 4",
        "UPDATE history_event SET seq = 4 WHERE seq = 5",
        "UPDATE history_event SET seq = 5 WHERE seq = -4",
    )
    assert "event 4: does not link to the event before it" in failure(portfolio)


def rewrite(portfolio: Portfolio, change: str) -> None:
    """Apply ``change``, then recompute every hash from the first event on."""
    portfolio.sql(*DROP_TRIGGERS, change)
    prev = history.GENESIS
    updates = []
    for event in portfolio.events():
        fields = {name: getattr(event, name) for name in history.HASHED_FIELDS}
        fields["prev_hash"] = prev
        prev = history.compute_hash(fields)
        updates.append((event.seq, fields["prev_hash"], prev))
    portfolio.sql(
        *(
            f"UPDATE history_event SET prev_hash = '{p}', hash = '{h}' WHERE seq = {seq}"
            for seq, p, h in updates
        )
    )


def test_rewrite_from_scratch_passes_plain_verify_and_fails_the_anchor(
    portfolio: Portfolio,
) -> None:
    anchor = portfolio.run("audit", "anchor").output.strip()
    rewrite(portfolio, "UPDATE history_event SET actor = 'mallory' WHERE seq = 3")
    portfolio.run("audit", "verify")  # the chain itself is consistent again
    out = failure(portfolio, "--anchor", anchor)
    seq = anchor.split(":")[0]
    assert f"event {seq} does not match the anchor" in out
    assert "rewritten" in out


def test_cut_off_tail_passes_plain_verify_and_fails_the_anchor(portfolio: Portfolio) -> None:
    anchor = portfolio.run("audit", "anchor").output.strip()
    head = int(anchor.split(":")[0])
    portfolio.sql(*DROP_TRIGGERS, f"DELETE FROM history_event WHERE seq >= {head - 1}")
    portfolio.run("audit", "verify")
    out = failure(portfolio, "--anchor", anchor)
    assert f"anchor {head}:" in out and f"beyond the newest event ({head - 2})" in out


def test_a_break_before_the_anchor_is_reported_first(portfolio: Portfolio) -> None:
    anchor = portfolio.run("audit", "anchor").output.strip()
    portfolio.sql(*DROP_TRIGGERS, "UPDATE history_event SET reason = 'x' WHERE seq = 2")
    assert "event 2: its content does not match" in failure(portfolio, "--anchor", anchor)


@pytest.mark.parametrize("bad", ["12", "x:abc", "3:" + "g" * 64, "-1:" + "0" * 64])
def test_malformed_anchor_is_a_usage_error(portfolio: Portfolio, bad: str) -> None:
    out = portfolio.run("audit", "verify", "--anchor", bad, code=2).output
    assert "SEQ:HASH" in out


def test_streaming_in_small_chunks_gives_the_same_answer(portfolio: Portfolio) -> None:
    engine = portfolio.engine()
    try:
        whole = verify_chain(engine)
        chunked = verify_chain(engine, chunk=3, anchor=whole.head)
        assert (chunked.events, chunked.head) == (whole.events, whole.head)
    finally:
        engine.dispose()
    portfolio.sql(*DROP_TRIGGERS, "DELETE FROM history_event WHERE seq = 11")
    engine = portfolio.engine()
    try:
        with pytest.raises(AuditFailure, match=re.escape("event 11: sequence number 11")):
            verify_chain(engine, chunk=3)
    finally:
        engine.dispose()


def test_empty_history_verifies_against_the_genesis_anchor(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}", create_dirs=True)
    try:
        create_schema(engine)
        done = verify_chain(engine, anchor=Anchor(0, history.GENESIS))
        assert done.events == 0 and done.head == Anchor(0, history.GENESIS)
        with pytest.raises(AuditFailure, match="beyond the newest event"):
            verify_chain(engine, anchor=Anchor(1, "a" * 64))
    finally:
        engine.dispose()


def test_the_fast_hash_is_the_history_hash(portfolio: Portfolio) -> None:
    """verify's own encoder must agree with mspflow.history's on every event and odd text."""
    from mspflow.audit.verify import FIELD_ORDER, row_hash

    assert sorted(FIELD_ORDER) == sorted(history.HASHED_FIELDS)
    events = portfolio.events()
    for event in events:
        fields = {name: getattr(event, name) for name in history.HASHED_FIELDS}
        assert row_hash([fields[n] for n in FIELD_ORDER]) == event.hash
    odd = {name: getattr(events[1], name) for name in history.HASHED_FIELDS}
    for text in ['quote " backslash \\ slash /', "tab\tline\nnul\x00", "é ü 水 \u2028 😀", ""]:
        odd.update(reason=text, actor=text)
        assert row_hash([odd[n] for n in FIELD_ORDER]) == history.compute_hash(odd)
    odd.update(reason=None, seq=2**40)
    assert row_hash([odd[n] for n in FIELD_ORDER]) == history.compute_hash(odd)
