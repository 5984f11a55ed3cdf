"""Reading a large portfolio: one partnership's history, counts by step, chain verification.

Each mspflow figure has a baseline on the same database in the same run: the
same question asked by hand through the DB-API driver, so the ratio shows what
mspflow's layers add to the database's own cost.
"""

from __future__ import annotations

import random
import time
from typing import Any

from sqlmodel import col, select

from benchmarks.walks import _connect, _sql
from mspflow import history
from mspflow.auth import Actor
from mspflow.services import Mspflow
from mspflow.store import make_engine, read_session
from mspflow.store import models as m

__all__ = [
    "COLUMNS",
    "Reader",
    "counts_mspflow",
    "counts_raw",
    "history_mspflow",
    "history_raw",
    "overdue_raw",
    "sample",
    "status_items_mspflow",
    "verify_command",
    "verify_mspflow",
    "verify_raw",
]

COLUMNS = ", ".join(history.HASHED_FIELDS) + ", hash"

#: Reads need a user: the secretariat sees the whole portfolio.
ACTOR = Actor("ana", "secretariat")


def sample(partnerships: int, n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [f"msp-{rng.randrange(partnerships):06d}" for _ in range(n)]


class Reader:
    """mspflow's engine and a plain driver connection on one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.service = Mspflow(engine=self.engine, actor=ACTOR)
        self.conn = _connect(url)
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()

    def raw(self, statement: str, params: Any = ()) -> list[Any]:
        cur = self.conn.cursor()
        cur.execute(_sql(self.dialect, statement), params)
        rows: list[Any] = cur.fetchall()
        if self.dialect == "postgresql":
            self.conn.rollback()  # end the read transaction
        return rows


# --------------------------------------------------------------------------- history


def history_mspflow(r: Reader, slug: str) -> float:
    """What ``mspflow history P`` asks of the library: find P, read its events."""
    start = time.perf_counter()
    events = r.service.partnerships.history(partnership=slug).events
    elapsed = time.perf_counter() - start
    assert events and events[0].kind == "create", slug
    return elapsed


def history_raw(r: Reader, slug: str) -> float:
    start = time.perf_counter()
    rows = r.raw(f"SELECT {COLUMNS} FROM history_event WHERE partnership = ? ORDER BY seq", (slug,))
    elapsed = time.perf_counter() - start
    assert rows, slug
    return elapsed


# --------------------------------------------------------------------------- counts


def counts_mspflow(r: Reader) -> tuple[float, dict[str, Any]]:
    """Partnerships per step and open overdue flags: ``mspflow schedule status`` without P,
    through the facade (which also lists the overdue items)."""
    start = time.perf_counter()
    counts = r.service.schedules.status().portfolio
    elapsed = time.perf_counter() - start
    assert counts is not None
    return elapsed, {
        "by_state": {k: int(v) for k, v in counts["by_state"].items()},
        "overdue_flags": {k: int(v) for k, v in counts["overdue_flags"].items()},
    }


def counts_raw(r: Reader) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    by_state = r.raw("SELECT state, count(*) FROM partnership GROUP BY state")
    overdue = r.raw(
        "SELECT p.slug, count(*) FROM partnership p JOIN fired_trigger f"
        " ON f.partnership_id = p.id WHERE f.purpose = 'overdue' AND f.resolved_at IS NULL"
        " GROUP BY p.slug"
    )
    elapsed = time.perf_counter() - start
    return elapsed, {
        "by_state": {k: int(v) for k, v in by_state},
        "overdue_flags": {k: int(v) for k, v in overdue},
    }


# --------------------------------------------------------------------------- verify


def verify_command(r: Reader) -> tuple[float, int]:
    """What ``mspflow audit verify`` runs: the audit service's verify."""
    start = time.perf_counter()
    done = r.service.audit.verify()
    return time.perf_counter() - start, done.events


def verify_mspflow(r: Reader, *, core: bool = False) -> tuple[float, int]:
    """:func:`mspflow.history.verify` over every event, streamed in seq order.

    ``core`` streams plain rows (SQLAlchemy Core) instead of ORM objects; verify
    reads fields by attribute, so it accepts both.
    """
    count = 0

    def counted(rows: Any) -> Any:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    start = time.perf_counter()
    with read_session(r.engine) as s:
        if core:
            table = m.HistoryEvent.__table__  # type: ignore[attr-defined]
            stream: Any = (
                s.connection()
                .execution_options(yield_per=5000)
                .execute(table.select().order_by(table.c.seq))
            )
        else:
            stream = s.exec(
                select(m.HistoryEvent)
                .order_by(col(m.HistoryEvent.seq))
                .execution_options(yield_per=5000)
            )
        breaks = list(history.verify(counted(stream)))
    elapsed = time.perf_counter() - start
    if breaks:
        raise RuntimeError(f"the generated chain does not verify: {breaks[0]}")
    return elapsed, count


def verify_raw(r: Reader) -> tuple[float, int]:
    """The same check written by hand: driver cursor, the same canonical JSON and SHA-256."""
    names = (*history.HASHED_FIELDS, "hash")
    start = time.perf_counter()
    # On PostgreSQL a named cursor streams from the server instead of loading everything.
    cur = r.conn.cursor(name="verify") if r.dialect == "postgresql" else r.conn.cursor()
    cur.execute(f"SELECT {COLUMNS} FROM history_event ORDER BY seq")
    expected, prev = 1, history.GENESIS
    while True:
        rows = cur.fetchmany(5000)
        if not rows:
            break
        for row in rows:
            fields = dict(zip(names, row, strict=True))
            if (
                fields["seq"] != expected
                or fields["prev_hash"] != prev
                or history.compute_hash(fields) != fields["hash"]
            ):
                raise RuntimeError(f"the chain breaks at {expected}")
            prev = fields["hash"]
            expected += 1
    cur.close()
    if r.dialect == "postgresql":
        r.conn.rollback()
    return time.perf_counter() - start, expected - 1


# --------------------------------------------------------------------------- schedule status


def status_items_mspflow(r: Reader) -> tuple[float, int]:
    """``mspflow schedule status`` without P: every open overdue item of the portfolio."""
    start = time.perf_counter()
    items = len(r.service.schedules.status().items)
    return time.perf_counter() - start, items


def overdue_raw(r: Reader) -> float:
    """The open overdue flags, read by hand: what the database needs to say what is overdue."""
    start = time.perf_counter()
    r.raw(
        "SELECT p.slug, f.key, f.occurrence, f.due_at FROM fired_trigger f JOIN partnership p"
        " ON p.id = f.partnership_id WHERE f.purpose = 'overdue' AND f.resolved_at IS NULL"
        " ORDER BY f.occurrence"
    )
    return time.perf_counter() - start
