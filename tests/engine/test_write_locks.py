"""Every write to a partnership under the moves' concurrency rule, one rule at a time.

The rule: read the partnership under its row lock (PostgreSQL ``FOR UPDATE``;
SQLite's ``BEGIN IMMEDIATE`` serialises writers), take the history's lock
after it (one order, so two writers never wait for each other in a circle),
and bump the version only if it is still the one read. A write decided on
another version exits 5 with nothing written; a deadlock the database
reports all the same is a concurrent change too. The eight-process race of
waivers against moves is in ``test_waive_race``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, text
from sqlmodel import select

from mspflow.definition import Workflow
from mspflow.errors import ConcurrentChange
from mspflow.services import Mspflow
from mspflow.services.partnerships import Partnerships
from mspflow.store import models as m
from mspflow.store import read_session, write_session
from mspflow.store.lookup import find
from mspflow.walk import WALK, record_piece
from tests.conftest import SECRETARIAT, Backend, invoke

pytestmark = pytest.mark.timeout(120)


def _new(service: Mspflow, wf: Workflow, wf_text: str, at_step: str | None = None) -> str:
    name = f"Partnership at {at_step or 1}"
    return service.partnerships.create(
        name=name, workflow=wf, definition_text=wf_text, at_step=at_step
    ).id


def _version(engine: Engine, slug: str) -> int:
    with read_session(engine) as s:
        return int(s.exec(select(m.Partnership.version).where(m.Partnership.slug == slug)).one())


def _counts(engine: Engine) -> tuple[int, ...]:
    """Rows of everything a write to a partnership adds."""
    with read_session(engine) as s:
        return tuple(
            int(s.exec(select(func.count()).select_from(t)).one())
            for t in (m.HistoryEvent, m.Waiver, m.ScaleUpDecision, m.Partnership, m.Lesson)
        )


# --------------------------------------------------------------------------- the version check


def test_touch_refuses_a_version_it_did_not_read(
    engine: Engine, service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    slug = _new(service, msp, msp_text)
    before = _version(engine, slug)
    with service.ctx.writing(slug) as s:  # two bumps in one transaction: each from the one before
        p = find(s, slug, for_update=True)
        service.partnerships.touch(s, p)
        service.partnerships.touch(s, p)
        assert p.version == before + 2
    assert _version(engine, slug) == before + 2
    someone_else = "UPDATE partnership SET version = version + 1 WHERE id = :id"
    with (
        pytest.raises(ConcurrentChange, match="changed by someone else"),
        service.ctx.writing(slug) as s,
    ):
        p = find(s, slug, for_update=True)
        # A write the loaded row does not know of (what a commit by another
        # writer looks like to a transaction that read without the lock).
        s.execute(text(someone_else), {"id": p.id})
        service.partnerships.touch(s, p)
    assert _version(engine, slug) == before + 2  # the whole transaction was undone


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_evidence_read_without_the_lock_exits_5_after_another_writer_commits(
    backend: Backend, engine: Engine, service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    slug = _new(service, msp, msp_text)
    before = _counts(engine)
    with pytest.raises(ConcurrentChange), write_session(engine) as s:
        p = find(s, slug)  # no row lock: only the version check protects
        service.evidence.record(partnership=slug, kind="lesson", values={"text": "someone else's"})
        s.add(m.Lesson(partnership_id=p.id, text="ours", recorded_by="ana",
                       recorded_at=service.clock.now()))  # fmt: skip
        s.flush()
        service.partnerships.touch(s, p)
    assert _counts(engine) == (before[0], *before[1:4], before[4] + 1)  # only theirs kept


class _Interrupted(Partnerships):
    """Partnerships whose moves are interrupted, right after they read the version
    they decide on, by another writer's commit (a lesson recorded)."""

    def __init__(self, app: Mspflow) -> None:
        super().__init__(app.ctx)
        self.app = app

    def prepare(self, ref: str) -> tuple[int, Workflow]:
        seen = super().prepare(ref)
        self.app.evidence.record(
            partnership=ref, kind="lesson", values={"text": "recorded meanwhile"}
        )
        return seen


def test_a_move_decided_before_another_write_exits_5(
    engine: Engine, service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    slug = _new(service, msp, msp_text)
    for records in WALK[1].values():
        record_piece(service, slug, records)
    before = _counts(engine)
    with pytest.raises(ConcurrentChange, match="changed by someone else"):
        _Interrupted(service).move(partnership=slug, kind="advance")
    assert _counts(engine) == (*before[:4], before[4] + 1)  # the lesson, no move
    service.partnerships.move(partnership=slug, kind="advance")  # decided afresh, it goes through


# --------------------------------------------------------------------------- --expect-version


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    env = {
        "MSPFLOW_DATABASE_URL": db_url,
        "MSPFLOW_ACTOR": "ana",
        "MSPFLOW_NOW": "2027-01-04T09:00:00Z",
    }
    assert invoke("init", "--admin", "ana", env=env).exit_code == 0
    made = invoke("partnership", "create", "Scaling", "--id", "p", "--at-step", "11", env=env)
    assert made.exit_code == 0, made.output
    return env


WRITES = {
    "waive": ["waive", "p", "scale-up-decided", "--reason", "decided elsewhere"],
    "scale-up": ["scale-up", "p", "--dimension", "social", "--description", "two more districts"],
    "debt backfill": ["debt", "backfill", "p"],
}


@pytest.mark.parametrize("command", list(WRITES))
def test_a_write_decided_on_another_version_exits_5_and_writes_nothing(
    env: dict[str, str], command: str
) -> None:
    engine_ = _engine(env)
    try:
        seen = _version(engine_, "p")
        assert invoke("record", "lesson", "p", "meanwhile", env=env).exit_code == 0
        before = _counts(engine_)
        refused = invoke(*WRITES[command], "--expect-version", str(seen), "--json", env=env)
        assert refused.exit_code == 5, refused.output
        lines = refused.output.strip().splitlines()
        assert len(lines) == 1 and f"is at version {seen + 1}, not {seen}" in lines[0], lines
        assert _counts(engine_) == before and _version(engine_, "p") == seen + 1
        done = invoke(*WRITES[command], "--expect-version", str(seen + 1), "--json", env=env)
        assert done.exit_code == 0, done.output
        # A backfill writes (an event, a bump) only if it settled something.
        wrote = command != "debt backfill" or bool(json.loads(done.output)["settled"])
        assert _version(engine_, "p") == seen + 1 + wrote
    finally:
        engine_.dispose()


def _engine(env: dict[str, str]) -> Engine:
    from mspflow.store import make_engine

    return make_engine(env["MSPFLOW_DATABASE_URL"])


# --------------------------------------------------------------------------- lock order


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL the engine sends, in order, while the test runs."""
    sent: list[str] = []

    def keep(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", keep)
    yield sent
    event.remove(engine, "before_cursor_execute", keep)


def _lock_order(sent: list[str]) -> list[str]:
    """The locking statements among ``sent``: the partnership row read FOR UPDATE, the
    history's advisory lock, and writes to the partnership row."""
    found = []
    for statement in sent:
        if re.search(r"FROM partnership\b.* FOR UPDATE", statement):
            found.append("row lock")
        elif "pg_advisory_xact_lock" in statement:
            found.append("history lock")
        elif statement.startswith("UPDATE partnership "):
            found.append("row write")
    return found


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_every_write_locks_the_row_before_the_history(
    backend: Backend,
    engine: Engine,
    service: Mspflow,
    msp: Workflow,
    msp_text: str,
    statements: list[str],
) -> None:
    ana = SECRETARIAT
    mover = _new(service, msp, msp_text)
    for records in WALK[1].values():
        record_piece(service.as_user(ana), mover, records)
    debtor = _new(service, msp, msp_text, at_step="2")
    for records in WALK[1].values():
        record_piece(service.as_user(ana), debtor, records)
    scaler = _new(service, msp, msp_text, at_step="11")
    writes: dict[str, Callable[[], object]] = {
        "advance": lambda: service.as_user(ana).partnerships.move(
            partnership=mover, kind="advance"
        ),
        "waive": lambda: service.as_user(ana).partnerships.waive(
            partnership=mover, criterion="common-problem", reason="known"
        ),
        "backfill": lambda: service.as_user(ana).partnerships.backfill(partnership=debtor),
        "scale-up": lambda: service.as_user(ana).partnerships.scale_up(
            partnership=scaler, dimensions=["physical"], description="more", replica="Copy"
        ),
    }
    for name, write in writes.items():
        statements.clear()
        write()
        order = _lock_order(statements)
        assert order[:2] == ["row lock", "history lock"] and "row write" in order, (name, order)


# --------------------------------------------------------------------------- deadlocks


def _waiting(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        kind = conn.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
        ).scalar()
    return kind == "Lock"


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_deadlock_the_database_reports_is_a_concurrent_change(
    backend: Backend, engine: Engine, service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    """A writer that holds one row and waits for another, held by a second writer
    that now waits for the first: PostgreSQL ends one of them. When it is
    mspflow's, the caller gets ConcurrentChange (exit 5), not an internal error."""
    first = _new(service, msp, msp_text)
    second = _new(service, msp, msp_text, at_step="2")
    outcome: list[BaseException | None] = []
    holding = threading.Event()
    mine: list[int] = []

    def writer() -> None:
        try:
            with service.ctx.writing(first) as s:
                # This side is the one that finds the deadlock (the other waits 60 s).
                s.execute(text("SET LOCAL deadlock_timeout = '20ms'"))
                mine.append(int(s.execute(text("SELECT pg_backend_pid()")).scalar_one()))
                find(s, first, for_update=True)
                holding.set()
                assert other_waiting.wait(60)
                find(s, second, for_update=True)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
            holding.set()

    other_waiting = threading.Event()
    with engine.connect() as other:
        other.execute(text("SET deadlock_timeout = '60s'"))
        other_pid = int(other.execute(text("SELECT pg_backend_pid()")).scalar_one())
        other.commit()
        with other.begin():
            other.execute(text("SELECT 1 FROM partnership WHERE slug = :s FOR UPDATE"),
                          {"s": second})  # fmt: skip
            thread = threading.Thread(target=writer)
            thread.start()
            assert holding.wait(60)
            blocker = threading.Thread(target=lambda: _lock_in(other, first), name="other writer")
            blocker.start()
            # Until the other writer waits for our row (it would not, had ours failed).
            while blocker.is_alive() and not _waiting(engine, other_pid):
                pass
            other_waiting.set()
            thread.join(60)
            blocker.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], ConcurrentChange), outcome
    assert mine and "nothing was written" in str(outcome[0])


def _lock_in(conn: Any, slug: str) -> None:
    conn.execute(text("SELECT 1 FROM partnership WHERE slug = :s FOR UPDATE"), {"s": slug})
