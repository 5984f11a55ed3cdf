"""The 12-step walk, three ways: through mspflow, by hand on the database, in SpiffWorkflow.

Each walker takes fresh partnerships (or process instances) through the 12
steps of the framework, one transaction per transition, and returns the
seconds each transition took. Evidence that the gates read is recorded before
each move and is not timed: the figure is the transition itself (gate check,
state change, history event, commit).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import Profile
from mspflow.auth import Actor
from mspflow.clock import ManualClock
from mspflow.definition import Workflow, find_workflow
from mspflow.history import GENESIS
from mspflow.services import Mspflow
from mspflow.services.users import add_first_user
from mspflow.store import create_schema, make_engine, write_session
from mspflow.walk import WALK

__all__ = [
    "ACTOR",
    "MOVES",
    "START",
    "MspflowWalker",
    "RawWalker",
    "SpiffWalker",
    "SpiffWorkflowWalker",
    "bundled",
]

ACTOR = Actor("bench", "secretariat")
START = datetime(2027, 1, 4, 9, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Move:
    kind: str
    dest: str | None = None
    outcome: str | None = None


#: The 12 transitions of a full walk, step 1 to a step-12 outcome: advance
#: through steps 1-9, scale up from 10 to 11, move on to 12, conclude with a
#: transfer to one organization.
MOVES: tuple[Move, ...] = (
    *(Move("advance") for _ in range(9)),
    Move("advance", "11"),
    Move("advance"),
    Move("conclude", outcome="transfer"),
)


def bundled() -> tuple[Workflow, str]:
    wf = find_workflow("msp-12-step")
    return wf, Path(wf.source).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- mspflow


class MspflowWalker:
    """Walks partnerships through mspflow's facade (``Mspflow.partnerships.move``)."""

    label = "mspflow"

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url, create_dirs=True)
        create_schema(self.engine)
        self.clock = ManualClock(START)
        add_first_user(self.engine, self.clock.now(), ACTOR.name, None)
        self.service = Mspflow(engine=self.engine, clock=self.clock, actor=ACTOR)
        self.wf, self.text = bundled()

    def close(self) -> None:
        self.engine.dispose()

    def create(self, slugs: Sequence[str]) -> None:
        for slug in slugs:
            self.service.partnerships.create(
                name=f"Benchmark {slug}", workflow=self.wf, definition_text=self.text, slug=slug
            )

    def prepare(self, slug: str, index: int) -> None:
        """Record what the gate of the step at ``index`` (0-based) reads."""
        step = index + 1
        if step in WALK:
            updates = []
            with write_session(self.engine) as s:
                for records in WALK[step].values():
                    for kind, values in records:
                        if kind == "partner-update":
                            updates.append(values)
                        else:
                            self.service.evidence.record(
                                partnership=slug, kind=kind, values=values, session=s
                            )
            for values in updates:
                rest = dict(values)
                self.service.evidence.update_partner(
                    partnership=slug, partner=rest.pop("name"), values=rest
                )
        elif step == 11:
            self.service.partnerships.scale_up(
                partnership=slug, dimensions=["physical"], description="Replicate next door"
            )
        self.clock.advance(timedelta(days=1))

    def move(self, slug: str, index: int) -> None:
        mv = MOVES[index]
        self.service.partnerships.move(
            partnership=slug, kind=mv.kind, dest=mv.dest, outcome=mv.outcome
        )

    def walk(self, slugs: Sequence[str], profile: Profile | None = None) -> list[float]:
        """Create ``slugs`` and take each through all 12 transitions; seconds per transition."""
        self.create(slugs)
        times: list[float] = []
        for slug in slugs:
            for index in range(len(MOVES)):
                self.prepare(slug, index)
                with profile.segment() if profile else nullcontext():
                    start = time.perf_counter()
                    self.move(slug, index)
                    times.append(time.perf_counter() - start)
        return times


# --------------------------------------------------------------------------- by hand


def _sql(dialect: str, statement: str) -> str:
    return statement.replace("?", "%s") if dialect == "postgresql" else statement


class RawWalker:
    """The same writes as a move, by hand on the DB-API driver, in mspflow's schema.

    One transaction per transition: read the partnership's state and version,
    read the head of the history chain, insert one hash-chained event, update
    the partnership only if its version is unchanged, commit. On PostgreSQL the
    chain is serialized with the same advisory lock mspflow takes. No gate is
    evaluated: this is the database's own price for a durable transition.
    """

    label = "raw"

    def __init__(self, url: str) -> None:
        engine = make_engine(url, create_dirs=True)
        create_schema(engine)
        self.dialect = engine.dialect.name
        self.wf, self.text = bundled()
        self.definition = f"{self.wf.name}@{self.wf.version}#{self.wf.content_hash[:16]}"
        engine.dispose()
        self.conn = _connect(url)
        self._execute(
            "INSERT INTO workflow_definition (content_hash, name, version, source_text, stored_at)"
            " SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS"
            " (SELECT 1 FROM workflow_definition WHERE content_hash = ?)",
            (
                self.wf.content_hash,
                self.wf.name,
                self.wf.version,
                self.text,
                self._stamp(START),
                self.wf.content_hash,
            ),
        )
        self.conn.commit()
        # The states a full walk passes through, and the evidence each event names.
        self.states = [st.id for st in self.wf.steps] + ["transferred"]
        self.evidence = [
            _dumps(
                {
                    c.id: {"task": c.task, "found": "recorded", "record": c.check, "count": 1}
                    for c in st.gate
                }
            )
            for st in self.wf.steps
        ]
        self.ids: dict[str, int] = {}

    def _stamp(self, at: datetime) -> Any:
        """A timestamp as SQLAlchemy stores it: text on SQLite, timestamptz on PostgreSQL."""
        if self.dialect == "sqlite":
            return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        return at

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        cur = self.conn.cursor()
        cur.execute(_sql(self.dialect, statement), params)
        return cur

    def close(self) -> None:
        self.conn.close()

    def create(self, slugs: Sequence[str]) -> None:
        now = self._stamp(START)
        for slug in slugs:
            self._begin()
            cur = self._execute(
                "INSERT INTO partnership (slug, name, workflow_name, workflow_version,"
                " workflow_hash, state, version, entered_seq, timezone, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 1, 0, 'UTC', ?, ?) RETURNING id",
                (
                    slug,
                    f"Benchmark {slug}",
                    self.wf.name,
                    self.wf.version,
                    self.wf.content_hash,
                    self.states[0],
                    now,
                    now,
                ),
            )
            self.ids[slug] = cur.fetchone()[0]
            self.conn.commit()

    def _begin(self) -> None:
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")

    def move(self, slug: str, index: int, at: datetime) -> None:
        pid = self.ids[slug]
        mv = MOVES[index]
        self._begin()
        if self.dialect == "postgresql":
            self._execute("SELECT pg_advisory_xact_lock(?)", (0x6D7366,))
        state, version = self._execute(
            "SELECT state, version FROM partnership WHERE id = ?", (pid,)
        ).fetchone()
        dest = self.states[index + 1]
        head = self._execute(
            "SELECT seq, hash FROM history_event ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        fields = {
            "seq": seq,
            "partnership": slug,
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": ACTOR.name,
            "role": ACTOR.role,
            "kind": mv.kind,
            "trigger": f"{mv.kind}__{dest}" + (f"__{mv.outcome}" if mv.outcome else ""),
            "from_state": state,
            "to_state": dest,
            "reason": None,
            "waived": "[]",
            "evidence": self.evidence[index],
            "definition": self.definition,
            "data": _dumps({"outcome": mv.outcome} if mv.outcome else {}),
            "prev_hash": prev,
        }
        digest = hashlib.sha256(_dumps(fields).encode()).hexdigest()
        self._execute(
            "INSERT INTO history_event (seq, partnership, at, actor, role, kind, trigger,"
            " from_state, to_state, reason, waived, evidence, definition, data, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*fields.values(), digest),
        )
        cur = self._execute(
            "UPDATE partnership SET state = ?, version = ?, entered_seq = ?, updated_at = ?"
            " WHERE id = ? AND version = ?",
            (dest, version + 1, seq, self._stamp(at), pid, version),
        )
        if cur.rowcount != 1:
            raise RuntimeError(f"{slug} changed meanwhile")
        self.conn.commit()

    def walk(self, slugs: Sequence[str], profile: Profile | None = None) -> list[float]:
        self.create(slugs)
        times: list[float] = []
        at = START
        for slug in slugs:
            for index in range(len(MOVES)):
                at += timedelta(days=1)
                start = time.perf_counter()
                self.move(slug, index, at)
                times.append(time.perf_counter() - start)
        return times


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _connect(url: str) -> Any:
    """A plain DB-API connection with mspflow's session settings."""
    if url.startswith("sqlite"):
        import sqlite3

        from mspflow.store.db import BUSY_TIMEOUT_MS

        conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # isolation_level=None: BEGIN is explicit, and commit() ends it.
        return conn
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


# --------------------------------------------------------------------------- SpiffWorkflow


BPMN = Path(__file__).with_name("msp12.bpmn")


class SpiffWorkflowWalker:
    """The same walk as a 12-user-task BPMN process in SpiffWorkflow.

    Each instance is one row (its JSON serialization) in a table of its own,
    on the same database settings. A transition completes the ready user task,
    runs the engine steps, serializes the workflow and updates the row, in one
    transaction.

    With ``load=False`` instances stay in memory between steps, which favours
    SpiffWorkflow. With ``load=True`` each transition first reads the row and
    deserializes it inside its transaction, as mspflow reads the partnership:
    the way a service that keeps no state in its processes has to run it.
    """

    def __init__(self, url: str, *, load: bool = False) -> None:
        from SpiffWorkflow.bpmn.parser import BpmnParser  # type: ignore[import-untyped]
        from SpiffWorkflow.bpmn.serializer import (  # type: ignore[import-untyped]
            BpmnWorkflowSerializer,
        )

        self.load = load
        self.label = "SpiffWorkflow+load" if load else "SpiffWorkflow"
        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec("msp12")
        self.serializer = BpmnWorkflowSerializer()
        self.conn = _connect(url)
        self.dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        self.conn.cursor().execute(
            "CREATE TABLE IF NOT EXISTS spiff_instance (slug VARCHAR PRIMARY KEY, data TEXT)"
        )
        self.conn.commit()
        self.instances: dict[str, Any] = {}

    def close(self) -> None:
        self.conn.close()

    def _begin(self) -> None:
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")

    def _run(self, statement: str, params: Sequence[Any]) -> Any:
        cur = self.conn.cursor()
        cur.execute(_sql(self.dialect, statement), params)
        return cur

    def create(self, slugs: Sequence[str]) -> None:
        from SpiffWorkflow.bpmn import BpmnWorkflow  # type: ignore[import-untyped]

        for slug in slugs:
            wf = BpmnWorkflow(self.spec)
            wf.do_engine_steps()
            self._begin()
            self._run(
                "INSERT INTO spiff_instance (data, slug) VALUES (?, ?)",
                (self.serializer.serialize_json(wf), slug),
            )
            self.conn.commit()
            if not self.load:
                self.instances[slug] = wf

    def move(self, slug: str) -> Any:
        from SpiffWorkflow.util.task import TaskState  # type: ignore[import-untyped]

        self._begin()
        if self.load:
            row = self._run("SELECT data FROM spiff_instance WHERE slug = ?", (slug,)).fetchone()
            wf = self.serializer.deserialize_json(row[0])
        else:
            wf = self.instances[slug]
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        if len(ready) != 1:
            raise RuntimeError(f"{slug}: {len(ready)} ready user tasks")
        ready[0].run()
        wf.do_engine_steps()
        data = self.serializer.serialize_json(wf)
        self._run("UPDATE spiff_instance SET data = ? WHERE slug = ?", (data, slug))
        self.conn.commit()
        return wf

    def walk(self, slugs: Sequence[str], profile: Profile | None = None) -> list[float]:
        self.create(slugs)
        times: list[float] = []
        for slug in slugs:
            wf = None
            for _ in range(len(MOVES)):
                start = time.perf_counter()
                wf = self.move(slug)
                times.append(time.perf_counter() - start)
            if wf is None or not wf.completed:
                raise RuntimeError(f"{slug}: the process did not complete in 12 tasks")
            self.instances.pop(slug, None)
        return times


SpiffWalker = SpiffWorkflowWalker
