"""A stored definition is compiled once per process, and never inside a write transaction.

A write transaction holds the database's write lock (SQLite) or the
partnership's row lock (PostgreSQL); compiling the definition there would hold
it for as long as that takes. Every write compiles it before its transaction
opens, and the compiled definition is kept by its hash.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event

from mspflow.clock import ManualClock
from mspflow.definition import loader
from mspflow.services import Mspflow
from mspflow.store import definitions
from mspflow.walk import WALK, record_piece, record_step
from tests.conftest import SECRETARIAT

_open = threading.local()


@pytest.fixture
def watched(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Every compilation of a stored definition, as True when a write transaction was open."""

    def begin(conn: Any) -> None:
        _open.write = bool(conn.get_execution_options().get("mspflow_write"))

    def end(_conn: Any) -> None:
        _open.write = False

    event.listen(engine, "begin", begin)
    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)
    compiled: list[bool] = []
    real = loader.compile_stored

    def counting(*args: Any, **kwargs: Any) -> Any:
        compiled.append(getattr(_open, "write", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(definitions, "compile_stored", counting)
    yield compiled
    for name, fn in (("begin", begin), ("commit", end), ("rollback", end)):
        event.remove(engine, name, fn)


def test_every_write_compiles_before_its_transaction(
    engine: Engine, clock: ManualClock, watched: list[bool]
) -> None:
    app = Mspflow(engine=engine, clock=clock, actor=SECRETARIAT)
    app.partnerships.create(name="Water", slug="water")
    app.partnerships.create(name="Ongoing", slug="ongoing", at_step="11")
    writes = [
        lambda: record_step(app, "water", 1),
        lambda: app.partnerships.advance(partnership="water"),
        lambda: app.partnerships.waive(partnership="water", criterion="goal-set", reason="x"),
        lambda: app.partnerships.revisit(partnership="water", step="1", reason="new partners"),
        lambda: app.partnerships.backfill(partnership="ongoing"),
        lambda: app.partnerships.scale_up(
            partnership="ongoing", dimensions=["social"], description="two more districts"
        ),
        lambda: app.members.add(partnership="water", user="pia", partner="Village Water Network"),
    ]
    for write in writes:
        definitions.forget()  # as a new process would start
        before = len(watched)
        write()
        assert len(watched) == before + 1  # compiled once, not once per statement
    assert watched and not any(watched), watched


def test_a_definition_is_compiled_once_per_process(
    engine: Engine, clock: ManualClock, watched: list[bool]
) -> None:
    app = Mspflow(engine=engine, clock=clock, actor=SECRETARIAT)
    app.partnerships.create(name="Water", slug="water")
    definitions.forget()
    for _ in range(3):
        app.partnerships.show(partnership="water")
        app.evidence.record(partnership="water", kind="lesson", values={"text": "again"})
    assert len(watched) == 1


def test_the_sweep_compiles_before_it_moves(
    engine: Engine, clock: ManualClock, watched: list[bool]
) -> None:
    from datetime import datetime, timedelta, timezone

    from mspflow.scheduler.notify import TerminalChannel
    from mspflow.services.sweep import Sweeper

    app = Mspflow(engine=engine, clock=clock, actor=SECRETARIAT)
    app.partnerships.create(name="Water", slug="water", at_step="7")
    record_piece(app, "water", WALK[1]["partner-identified"])
    record_piece(app, "water", WALK[9]["panel-complete"])
    app.schedules.add(partnership="water", kind="review-panel", cadence="quarterly",
                      start="2027-02-01")  # fmt: skip
    definitions.forget()
    clock.set(datetime(2027, 2, 1, 10, tzinfo=timezone.utc) + timedelta(minutes=5))
    report = Sweeper(engine, clock, channels=[TerminalChannel(lambda _: None)]).sweep()
    assert report.moved == ["water"]
    assert watched == [False]
