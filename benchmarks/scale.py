"""Reading a large portfolio: one partnership's history, counts by step, chain verification.

Each mspflow figure has a baseline on the same database in the same run: the
same question asked by hand through the DB-API driver, so the ratio shows what
mspflow's layers add to the database's own cost.
"""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from benchmarks.walks import _connect, _sql
from mspflow import history
from mspflow.clock import SystemClock
from mspflow.engine import PartnershipService
from mspflow.store import make_engine, read_session
from mspflow.store import models as m

__all__ = [
    "COLUMNS",
    "counts_mspflow",
    "counts_raw",
    "history_mspflow",
    "history_raw",
    "verify_mspflow",
    "verify_raw",
]

COLUMNS = ", ".join(history.HASHED_FIELDS) + ", hash"


def sample(partnerships: int, n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [f"msp-{rng.randrange(partnerships):06d}" for _ in range(n)]


class Reader:
    """mspflow's engine and a plain driver connection on one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.service = PartnershipService(self.engine, SystemClock())
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
    with read_session(r.engine) as s:
        p = r.service.get(s, slug)
        events = r.service.history(s, p)
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


def counts_mspflow(r: Reader) -> tuple[float, dict[str, int]]:
    """Partnerships per step, as a portfolio summary would ask through SQLModel."""
    start = time.perf_counter()
    with read_session(r.engine) as s:
        rows = s.exec(
            select(m.Partnership.state, func.count(col(m.Partnership.id))).group_by(
                m.Partnership.state
            )
        ).all()
    elapsed = time.perf_counter() - start
    return elapsed, {state: int(n) for state, n in rows}


def counts_raw(r: Reader) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    rows = r.raw("SELECT state, count(id) FROM partnership GROUP BY state")
    elapsed = time.perf_counter() - start
    return elapsed, {state: int(n) for state, n in rows}


# --------------------------------------------------------------------------- verify


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
