"""What must hold in a store after any mix of concurrent writers and crashes.

* the hash chain verifies (and so its sequence numbers run without gaps);
* replaying each partnership's state-changing events, oldest first, links up
  (each starts where the one before ended) and ends at the partnership's state,
  whose ``entered_seq`` is the last of them;
* the version counter grew by exactly one per event and per evidence record
  written since the baseline: no state change without its event, no event
  without its state change, no write lost or doubled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, func
from sqlmodel import col, select

from mspflow import history
from mspflow.store import models as m
from mspflow.store import read_session

__all__ = ["Baseline", "baseline", "check_store"]

_ENTRY = ("create", "onboard")


@dataclass(frozen=True)
class Baseline:
    """Per partnership slug: (version, lessons, events) when the test began."""

    rows: dict[str, tuple[int, int, int]]


def _lessons(engine: Engine) -> Counter[int]:
    with read_session(engine) as s:
        rows = s.exec(
            select(m.Lesson.partnership_id, func.count()).group_by(col(m.Lesson.partnership_id))
        ).all()
    return Counter({pid: n for pid, n in rows})


def baseline(engine: Engine) -> Baseline:
    lessons = _lessons(engine)
    with read_session(engine) as s:
        events = Counter(s.exec(select(m.HistoryEvent.partnership)).all())
        return Baseline(
            {
                p.slug: (p.version, lessons[p.id or 0], events[p.slug])
                for p in s.exec(select(m.Partnership))
            }
        )


def check_store(engine: Engine, since: Baseline) -> dict[str, int]:
    """Assert the invariants; return the events and evidence records added since ``since``."""
    lessons = _lessons(engine)
    with read_session(engine) as s:
        events = list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))
        partnerships = list(s.exec(select(m.Partnership)))
    breaks = list(history.verify(events))
    assert breaks == [], f"the hash chain breaks: {breaks[0]}"
    added = {"events": 0, "lessons": 0}
    for p in partnerships:
        own = [e for e in events if e.partnership == p.slug]
        changing = [e for e in own if e.kind in _ENTRY or e.from_state != e.to_state]
        assert changing and changing[0].kind in _ENTRY, f"{p.slug}: no creation event"
        state = changing[0].to_state
        for e in changing[1:]:
            assert e.from_state == state, (
                f"{p.slug}: event {e.seq} moves from {e.from_state}, but the one before "
                f"ended at {state}"
            )
            state = e.to_state
        assert p.state == state, f"{p.slug}: state {p.state}, its last event ended at {state}"
        assert p.entered_seq == changing[-1].seq, (
            f"{p.slug}: entered_seq {p.entered_seq}, last state change is {changing[-1].seq}"
        )
        version, lessons_before, events_before = since.rows.get(p.slug, (1, 0, 1))
        new_events = len(own) - events_before
        new_lessons = lessons[p.id or 0] - lessons_before
        assert p.version - version == new_events + new_lessons, (
            f"{p.slug}: version went {version} -> {p.version}, but {new_events} event(s) "
            f"and {new_lessons} lesson(s) were written"
        )
        added["events"] += new_events
        added["lessons"] += new_lessons
    return added
