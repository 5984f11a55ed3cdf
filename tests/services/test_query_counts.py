"""Portfolio views cost a constant number of queries, whatever the portfolio's size
(counted with a SQLAlchemy event listener at 10 and at 1,000 partnerships)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select

from mspflow.services import Mspflow
from mspflow.store import models as m
from mspflow.store import read_session, write_session


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def grow(service: Mspflow, engine: Engine, total: int) -> None:
    """Make the portfolio ``total`` partnerships: the first by the service (at step 7,
    with the gate debt of steps 1-6), the others copies of its row at alternating steps,
    every third a replica of the first."""
    with read_session(engine) as s:
        have = len(s.execute(select(m.Partnership.id)).all())
    if have == 0:
        service.partnerships.create(name="Seed", slug="seed", at_step="7")
        have = 1
    with read_session(engine) as s:
        seed = s.exec(select(m.Partnership).where(m.Partnership.slug == "seed")).scalar_one()
        base = {c: getattr(seed, c) for c in COPIED}
    rows = [
        {
            **base,
            "slug": f"p{n}",
            "name": f"P {n}",
            "state": "delivering" if n % 2 else "planning",
            "parent_id": seed.id if n % 3 == 0 else None,
        }
        for n in range(have, total)
    ]
    with write_session(engine) as s:
        s.execute(insert(m.Partnership), rows)


COPIED = ("workflow_name", "workflow_version", "workflow_hash", "timezone", "created_at",
          "updated_at", "entered_seq")  # fmt: skip


VIEWS: dict[str, Callable[[Mspflow], object]] = {
    "partnership list": lambda a: a.partnerships.list(),
    "partnership list --step 7": lambda a: a.partnerships.list(step="7"),
    "partnership list --limit 5 --after": lambda a: a.partnerships.list(limit=5, after="p1"),
    "schedule status (portfolio)": lambda a: a.schedules.status(),
}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_a_portfolio_view_costs_the_same_at_10_and_at_1000(
    service: Mspflow, engine: Engine, view: str
) -> None:
    grow(service, engine, 10)
    VIEWS[view](service)  # definitions compiled, caches warm
    with counted(engine) as small:
        VIEWS[view](service)
    grow(service, engine, 1000)
    with read_session(engine) as r:
        assert len(r.execute(select(m.Partnership.id)).all()) == 1000
    with counted(engine) as large:
        VIEWS[view](service)
    assert small and len(large) == len(small), (view, small, large)
