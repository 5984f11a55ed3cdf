"""One scheduler sweep that finds many reminders due, in a process of its own.

The sweep runs on a copy of the large portfolio (its schedules stay quiet at
the sweep's time: they all fall at 09:00 UTC) to which
:func:`add_due_reminders` adds one schedule per reminder, spread over the open
partnerships, each with its next meeting a day ahead so that its 1-day
reminder fell due an hour before the sweep. The sweep runs in a child process
(``python -m benchmarks.sweep URL NOW RESULT``) with the terminal channel
writing to a discarded stdout, so its peak resident memory is its own.

The baseline is the database's share of that work done by hand: insert as
many fired triggers and notifications and mark the notifications sent, in
batches of the sweeper's size, one transaction each.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from benchmarks.walks import _connect, _sql
from mspflow.store import make_engine
from mspflow.store import models as m

__all__ = ["NOW", "add_due_reminders", "raw_rows", "run_child"]

#: The sweep's "now": the portfolio's own schedules fire at 09:00 UTC only.
NOW = datetime(2027, 1, 4, 15, 0, tzinfo=timezone.utc)
BATCH = 2000


def add_due_reminders(url: str, count: int) -> None:
    """``count`` schedules whose 1-day reminder is due at :data:`NOW`; the last sweep 2 h ago.

    That previous sweep really runs (untimed), so the timed one starts from what
    a running daemon leaves behind.
    """
    meeting = NOW + timedelta(days=1, hours=-1)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            finals = ("transferred", "institutionalized", "terminated")
            open_ids = [
                pid
                for pid, state in conn.execute(
                    text("SELECT id, state FROM partnership ORDER BY id")
                )
                if state not in finals
            ]
            rows = [
                {
                    "partnership_id": open_ids[n % len(open_ids)],
                    "recorded_by": "bench",
                    "recorded_at": NOW - timedelta(days=1),
                    "kind": "coordination-meeting",
                    "cadence": "monthly",
                    "starts_on": meeting.date(),
                    "local_time": f"{meeting:%H:%M}",
                    "timezone": "UTC",
                    "lead_days": "1",
                    "grace_days": 7,
                    "active": True,
                }
                for n in range(count)
            ]
            for start in range(0, len(rows), 20_000):
                conn.execute(insert(m.Schedule), rows[start : start + 20_000])
            conn.execute(
                insert(m.SweepState),
                [{"id": 1, "swept_until": NOW - timedelta(hours=4), "sweeps": 1}],
            )
        # The previous sweep, two hours before the timed one, as a daemon would have
        # made it: nothing falls due in its window (the portfolio's own schedules fire
        # at 09:00), but it notes when each schedule next has something to fire.
        from mspflow.clock import ManualClock
        from mspflow.scheduler.notify import TerminalChannel
        from mspflow.services.sweep import Sweeper

        previous = Sweeper(
            engine,
            ManualClock(NOW - timedelta(hours=2)),
            channels=[TerminalChannel(lambda _line: None)],
            name="previous",
            batch=BATCH,
        ).sweep()
        assert not previous.fired, previous.fired
    finally:
        engine.dispose()


def run_child(url: str, profile: Path | None = None) -> dict[str, Any]:
    """Sweep once at :data:`NOW` in a fresh process; its figures as a dict.

    With ``profile``, the child writes a pyinstrument report there (and is slower for it).
    """
    with tempfile.TemporaryDirectory(prefix="mspflow-bench-sweep-") as folder:
        result = Path(folder) / "result.json"
        argv = [sys.executable, "-m", "benchmarks.sweep", url, NOW.isoformat(), str(result)]
        subprocess.run(
            argv + ([str(profile)] if profile else []), check=True, stdout=subprocess.DEVNULL
        )
        data: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
        return data


def _rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(url: str, now: str, out: str, profile: str | None) -> None:
    from mspflow.clock import ManualClock
    from mspflow.scheduler.notify import TerminalChannel
    from mspflow.services.sweep import Sweeper

    engine = make_engine(url)
    sweeper = Sweeper(
        engine, ManualClock(datetime.fromisoformat(now)), channels=[TerminalChannel()]
    )
    profiler: Any = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    before = _rss_mb("VmRSS")
    start = time.perf_counter()
    report = sweeper.sweep()
    seconds = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    if profile and profiler is not None:
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False)
        Path(profile).write_text(text, encoding="utf-8")
    engine.dispose()
    Path(out).write_text(
        json.dumps(
            {
                "seconds": seconds,
                "rss_before_mb": before,
                "peak_rss_mb": peak,
                "fired": dict(report.fired),
                "sent": report.sent,
                "failed": report.failed,
            }
        ),
        encoding="utf-8",
    )


def raw_rows(url: str, count: int) -> float:
    """Seconds to write ``count`` triggers and notifications by hand and mark them sent."""
    conn = _connect(url)
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    stamp: Any = (
        NOW.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else NOW
    )  # as SQLAlchemy stores it
    cur = conn.cursor()
    pid, sid = cur.execute(
        _sql(dialect, "SELECT partnership_id, id FROM schedule LIMIT 1")
    ).fetchone()
    if dialect == "postgresql":
        conn.commit()
    start = time.perf_counter()
    for first in range(0, count, BATCH):
        if dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
        ids = []
        for n in range(first, min(first + BATCH, count)):
            row = cur.execute(
                _sql(
                    dialect,
                    "INSERT INTO fired_trigger (key, partnership_id, schedule_id, purpose,"
                    " occurrence, due_at, fired_at, late, outcome, detail, sweeper)"
                    " VALUES (?, ?, ?, 'reminder', ?, ?, ?, ?, 'notified', '{}', 'raw')"
                    " RETURNING id",
                ),
                (f"raw:{n}", pid, sid, stamp, stamp, stamp, False),
            ).fetchone()
            ids.append((row[0], pid, "terminal", "terminal", "Subject", "Body", stamp, stamp))
        cur.executemany(
            _sql(
                dialect,
                "INSERT INTO notification (trigger_id, partnership_id, channel, recipient,"
                " subject, body, status, attempts, next_attempt_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            ),
            ids,
        )
        cur.execute(
            _sql(
                dialect,
                "UPDATE notification SET status = 'sent', sent_at = ?, attempts = 1"
                " WHERE status = 'pending' AND trigger_id >= ?",
            ),
            (stamp, ids[0][0]),
        )
        conn.commit()
    seconds = time.perf_counter() - start
    conn.close()
    return seconds


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
