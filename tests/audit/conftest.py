"""A small, realistic portfolio on a SQLite file, built once and copied per test.

* ``water`` walks all 12 steps: one criterion of step 1 is waived with a reason,
  a quarterly review panel moves it from step 8 to 9 as the scheduler would,
  it scales up into the replica ``water-pursat`` and is handed to an institution;
* ``png`` is onboarded at step 7 (gate debt for steps 1-6) and sent back to 3.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import Engine
from sqlmodel import col, select

from mspflow.auth import SCHEDULER, Actor
from mspflow.clock import ManualClock
from mspflow.definition import find_workflow
from mspflow.history import format_instant
from mspflow.scheduler.times import occurrences
from mspflow.services import Mspflow
from mspflow.services.users import add_first_user
from mspflow.store import create_schema, make_engine, read_session
from mspflow.store import models as m
from mspflow.walk import WALK, record_piece
from tests.conftest import invoke

ANA = Actor("ana", "secretariat")
WF = find_workflow("msp-12-step")


def put(service: Mspflow, ref: str, records: Any) -> None:
    record_piece(service.as_user(ANA), ref, records)


def put_step(service: Mspflow, ref: str, step: int, skip: str = "") -> None:
    pieces: Mapping[str, Any] = WALK[step]
    for criterion, records in pieces.items():
        if criterion != skip:
            put(service, ref, records)


def build(url: str) -> None:
    """Create the portfolio in the empty database at ``url``."""
    clock = ManualClock(datetime(2027, 1, 4, 9, 0, tzinfo=timezone.utc))
    engine = make_engine(url, create_dirs=True)
    create_schema(engine)
    add_first_user(engine, clock.now(), "ana", "ana@example.org")
    Mspflow(engine=engine, clock=clock, actor=ANA).users.add(name="ivo", role="auditor", email=None)
    Mspflow(engine=engine, clock=clock, actor=ANA).users.add(name="pia", role="partner", email=None)
    service = Mspflow(engine=engine, clock=clock, actor=ANA)
    text = Path(WF.source).read_text(encoding="utf-8")

    def later(days: int = 14) -> None:
        clock.advance(timedelta(days=days))

    water = service.partnerships.create(
        name="Safe water", workflow=WF, definition_text=text, slug="water"
    ).id
    put_step(service, water, 1, skip="case-for-partnering")
    service.partnerships.waive(
        partnership=water, criterion="case-for-partnering", reason="The charter makes the case"
    )
    for step in range(1, 8):
        if step > 1:
            put_step(service, water, step)
        later()
        service.partnerships.move(partnership=water, kind="advance")
    # At step 8: a quarterly review panel falls due and the scheduler starts step 9.
    service.evidence.record(
        partnership=water,
        kind="schedule",
        values={
            "kind": "review-panel",
            "cadence": "quarterly",
            "start": "2027-06-01",
            "at": "10:00",
        },
    )
    with read_session(engine) as s:
        panel = s.exec(select(m.Schedule).where(m.Schedule.kind == "review-panel")).one()
        due = occurrences(panel, after=clock.now(), until=clock.now() + timedelta(days=366))[0]
    clock.set(due + timedelta(minutes=3))
    service.as_user(SCHEDULER).partnerships.move(
        partnership=water,
        kind="review-due",
        data={
            "schedule_id": panel.id,
            "schedule": "review-panel",
            "occurrence": format_instant(due).replace(".000000Z", "Z"),
        },
    )
    for step in (9, 10):
        put_step(service, water, step)
        later()
        service.partnerships.move(
            partnership=water, kind="advance", dest="11" if step == 10 else None
        )
    service.partnerships.scale_up(
        partnership=water,
        dimensions=["physical"],
        description="Replicate in Pursat",
        replica="Safe water Pursat",
        start_step="4",
    )
    later()
    service.partnerships.move(partnership=water, kind="advance")
    service.partnerships.move(
        partnership=water, kind="conclude", outcome="transfer-to-institution", note="handover"
    )

    png = service.partnerships.create(
        name="Provincial capacity", workflow=WF, definition_text=text, slug="png", at_step="7"
    ).id
    later(7)
    service.partnerships.move(
        partnership=png, kind="revisit", dest="3", reason="A partner withdrew"
    )
    engine.dispose()


@dataclass
class Portfolio:
    """A copy of the built portfolio that a test may change."""

    path: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def run(self, *args: str, code: int = 0, actor: str = "ivo") -> Result:
        env = {"MSPFLOW_DATABASE_URL": self.url, "MSPFLOW_ACTOR": actor}
        result = invoke(*args, env=env)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        return result

    def engine(self) -> Engine:
        return make_engine(self.url)

    def sql(self, *statements: str, params: tuple[Any, ...] = ()) -> None:
        """Change the file as someone with write access to it would: raw sqlite3."""
        conn = sqlite3.connect(self.path)
        try:
            with conn:
                for statement in statements:
                    conn.execute(statement, params if "?" in statement else ())
        finally:
            conn.close()

    def events(self) -> list[m.HistoryEvent]:
        engine = self.engine()
        try:
            with read_session(engine) as s:
                return list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))
        finally:
            engine.dispose()

    def count(self, model: Any) -> int:
        engine = self.engine()
        try:
            with read_session(engine) as s:
                return len(s.exec(select(model)).all())
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "portfolio.db"
    build(f"sqlite:///{path}")
    return path


@pytest.fixture
def portfolio(built: Path, tmp_path: Path) -> Iterator[Portfolio]:
    target = tmp_path / "portfolio.db"
    source, copy = sqlite3.connect(built), sqlite3.connect(target)
    with copy:
        source.backup(copy)
    source.close()
    copy.close()
    yield Portfolio(target)
