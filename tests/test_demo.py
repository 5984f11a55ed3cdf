"""`mspflow demo`, the README's main job: the whole story, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlmodel import col, select

from mspflow import history
from mspflow.store import make_engine, read_session
from mspflow.store import models as m
from tests.conftest import invoke


def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = invoke("demo", "--db", str(db))
    assert result.exit_code == 0, result.output
    out = result.output
    for line in (
        "[water-kch] advance refused (exit 3):",
        "case-for-partnering (task 1.3) waived with a reason",
        "[png-capacity] revisited step 3",
        "[water-kch] concluded: Transferred to a new institution (task 12.1)",
        "the scheduler moved mekong-forum to step 9",
        "overdue, no minutes of the meeting",
        "conformance: every move of",
    ):
        assert line in out, line
    # What it printed is what the database holds.
    engine = make_engine(f"sqlite:///{db}")
    try:
        with read_session(engine) as s:
            events = list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))
            flags = list(s.exec(select(m.FiredTrigger).where(m.FiredTrigger.purpose == "overdue")))
    finally:
        engine.dispose()
    assert list(history.verify(events)) == []
    moved_by_scheduler = [e for e in events if e.actor == "scheduler"]
    assert len(moved_by_scheduler) == 4 and {e.to_state for e in moved_by_scheduler} == {
        "reviewing"
    }
    assert len(flags) == 1
    assert f"the hash chain of {len(events)} events holds" in out
    assert (tmp_path / "audit" / "history.xes").stat().st_size > 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
