"""A generated portfolio: many partnerships, a long hash-chained history, fast to build.

Rows are written with SQLAlchemy Core ``executemany`` in large transactions,
not through the engine, so that a million events take seconds rather than
hours. The schema comes from :func:`mspflow.store.create_schema` and every
event's hash is computed with :func:`mspflow.history.compute_hash`, so the
result is a database mspflow opens, moves and verifies like any other.

What it holds: each partnership was created at step 1 and advanced to a
step between 1 and 12 or concluded; waivers fill the history up to the asked
number of events; every partnership has three partners and a profile row.
Events of different partnerships interleave in time, as they would on a real
platform, and the clock spreads them over about three years. Each open
partnership in delivery (steps 7-12) has a monthly coordination-meeting and a
monthly monitoring schedule at 09:00 UTC, and one in ten of those has an open
overdue flag (a ``fired_trigger`` row a sweep would have written).

SQLite databases are cached under ``.bench-cache/`` by a key made of
:data:`GENERATOR_VERSION`, the schema (DDL, migration scripts) and the sizes; PostgreSQL ones
are kept as databases named by the same key.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text
from sqlalchemy.schema import CreateTable
from sqlmodel import SQLModel

from benchmarks.common import CACHE
from benchmarks.walks import ACTOR, START, bundled
from mspflow import history
from mspflow.services.users import add_first_user
from mspflow.store import create_schema, make_engine, write_session
from mspflow.store import models as m
from mspflow.store.definitions import store_definition
from mspflow.walk import PARTNERS

__all__ = [
    "GENERATOR_VERSION",
    "Portfolio",
    "cache_key",
    "copy_sqlite",
    "generate",
    "pg_portfolio",
    "sqlite_portfolio",
]

#: Bump when the generated data changes, so cached databases are rebuilt.
GENERATOR_VERSION = 2

BATCH = 20_000
ACTORS = [f"staff{i:02d}" for i in range(20)]


@dataclass(frozen=True)
class Portfolio:
    url: str
    partnerships: int
    events: int
    key: str
    seconds: float  # spent generating (0 when it came from the cache)


def cache_key(partnerships: int, events: int, dialect: str = "sqlite") -> str:
    """Changes with the generator, the schema (DDL and migrations) and the sizes."""
    from sqlalchemy.dialects import postgresql, sqlite

    assert m.SCHEMA_VERSION
    d: Any = sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()  # type: ignore[no-untyped-call]
    ddl = "\n".join(str(CreateTable(t).compile(dialect=d)) for t in SQLModel.metadata.sorted_tables)
    # The schema is made by the migrations: their text is part of the key too.
    import mspflow.store.migrations as migrations

    folder = Path(migrations.__file__).parent
    scripts = "".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.py")))
    wf, _text = bundled()
    raw = f"{GENERATOR_VERSION}|{ddl}|{scripts}|{wf.content_hash}|{partnerships}|{events}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def sqlite_portfolio(partnerships: int, events: int, say: Any = print) -> Portfolio:
    """The cached SQLite portfolio of this size, generated on first use."""
    key = cache_key(partnerships, events)
    path = CACHE / f"portfolio-{partnerships}-{events}-{key}.db"
    done = path.with_suffix(".json")
    url = f"sqlite:///{path}"
    if path.exists() and done.exists():
        return Portfolio(url, partnerships, events, key, 0.0)
    for stale in CACHE.glob(f"portfolio-{partnerships}-{events}-*"):
        stale.unlink()
    CACHE.mkdir(parents=True, exist_ok=True)
    say(f"  generating {partnerships:,} partnerships / {events:,} events into {path} ...")
    start = time.perf_counter()
    engine = make_engine(url, create_dirs=True)
    try:
        generate(engine, partnerships, events)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    seconds = time.perf_counter() - start
    done.write_text(
        json.dumps({"partnerships": partnerships, "events": events, "seconds": seconds}),
        encoding="utf-8",
    )
    say(f"  generated in {seconds:.1f} s")
    return Portfolio(url, partnerships, events, key, seconds)


def copy_sqlite(p: Portfolio, folder: Path) -> str:
    """A private copy of a cached SQLite portfolio, for benchmarks that write."""
    source = Path(p.url.split(":///", 1)[1])
    target = folder / source.name
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


# --------------------------------------------------------------------------- generation


def _plan(partnerships: int, events: int, rng: random.Random) -> list[list[str]]:
    """Each partnership's events as a list of kinds, adding up to ``events``."""
    steps = 12
    plans: list[list[str]] = []
    for _ in range(partnerships):
        reached = rng.randint(0, steps)  # moves made: 0 (still at step 1) to 12 (concluded)
        kinds = ["create"] + ["advance"] * min(reached, steps - 1)
        if reached == steps:
            kinds.append("conclude")
        plans.append(kinds)
    total = sum(len(k) for k in plans)
    if total > events:
        raise ValueError(f"{events} events are too few for {partnerships} partnerships")
    # Waivers fill the rest; each lands at a random point of a random partnership.
    for _ in range(events - total):
        kinds = plans[rng.randrange(partnerships)]
        last = len(kinds) - (kinds[-1] == "conclude")  # a closed partnership waives nothing
        kinds.insert(rng.randint(1, last), "waive")
    return plans


def generate(engine: Engine, partnerships: int, events: int, seed: int = 7) -> None:
    """Fill an empty database with a portfolio of this size."""
    rng = random.Random(seed)
    wf, source = bundled()
    create_schema(engine)
    with write_session(engine) as s:
        store_definition(s, wf, source, START)
    add_first_user(engine, START, ACTOR.name, None)
    label = f"{wf.name}@{wf.version}#{wf.content_hash[:16]}"
    states = [st.id for st in wf.steps]
    gates = {st.id: [(c.id, c.task, c.check) for c in st.gate] for st in wf.steps}
    evidence_json = {
        sid: _dumps(
            {
                cid: {"task": task, "found": "recorded", "record": check, "count": 1}
                for cid, task, check in crit
            }
        )
        for sid, crit in gates.items()
    }
    plans = _plan(partnerships, events, rng)

    # When each event happened: a start within the first two years, then 1-30 days apart.
    origin = START - timedelta(days=3 * 365)
    order: list[tuple[float, int, int]] = []
    for i, kinds in enumerate(plans):
        t = rng.uniform(0, 730 * 86400)
        for j in range(len(kinds)):
            order.append((t, i, j))
            t += rng.uniform(86400, 30 * 86400)
    order.sort()

    slugs = [f"msp-{i:06d}" for i in range(partnerships)]
    state = [0] * partnerships  # index into states (len(states) = concluded)
    entered = [0] * partnerships
    created = [origin] * partnerships
    updated = [origin] * partnerships
    table = m.HistoryEvent.__table__  # type: ignore[attr-defined]
    prev = history.GENESIS
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for seq, (t, i, j) in enumerate(order, start=1):
            kind = plans[i][j]
            at = origin + timedelta(seconds=t)
            here = states[state[i]] if state[i] < len(states) else "transferred"
            fields: dict[str, Any] = {
                "seq": seq,
                "partnership": slugs[i],
                "at": history.format_instant(at),
                "actor": rng.choice(ACTORS),
                "role": "secretariat",
                "kind": kind,
                "trigger": None,
                "from_state": here,
                "to_state": here,
                "reason": None,
                "waived": "[]",
                "evidence": "{}",
                "definition": label,
                "data": "{}",
                "prev_hash": prev,
            }
            if kind == "create":
                fields["from_state"] = None
                fields["data"] = _dumps(
                    {"name": f"Partnership {i}", "parent": None, "gate_debt": []}
                )
                created[i] = at
                entered[i] = seq
            elif kind == "waive":
                crit = gates[here][rng.randrange(len(gates[here]))] if here in gates else None
                if crit is not None:
                    fields["waived"] = _dumps([crit[0]])
                    fields["data"] = _dumps({"step": here, "task": crit[1], "gate_debt": False})
                fields["reason"] = "Agreed by the steering committee"
            else:
                dest_index = state[i] + 1
                dest = states[dest_index] if dest_index < len(states) else "transferred"
                fields["to_state"] = dest
                fields["trigger"] = (
                    f"advance__{dest}" if kind == "advance" else f"conclude__{dest}__transfer"
                )
                fields["evidence"] = evidence_json[here]
                if kind == "conclude":
                    fields["data"] = _dumps({"outcome": "transfer"})
                state[i] = dest_index
                entered[i] = seq
            digest = history.compute_hash(fields)
            fields["hash"] = digest
            prev = digest
            updated[i] = at
            batch.append(fields)
            if len(batch) >= BATCH:
                conn.execute(insert(table), batch)
                batch = []
        if batch:
            conn.execute(insert(table), batch)

    with engine.begin() as conn:
        rows = []
        for i in range(partnerships):
            st = states[state[i]] if state[i] < len(states) else "transferred"
            rows.append(
                {
                    "id": i + 1,
                    "slug": slugs[i],
                    "name": f"Partnership {i}",
                    "workflow_name": wf.name,
                    "workflow_version": wf.version,
                    "workflow_hash": wf.content_hash,
                    "state": st,
                    "version": len(plans[i]),
                    "entered_seq": entered[i],
                    "timezone": "UTC",
                    "parent_id": None,
                    "created_at": _utc(created[i]),
                    "updated_at": _utc(updated[i]),
                }
            )
        for chunk in _chunks(rows, BATCH):
            conn.execute(insert(m.Partnership.__table__), chunk)  # type: ignore[attr-defined]
        partners = (
            {
                "partnership_id": i + 1,
                "name": name,
                "sector": sector,
                "contact_name": "Contact",
                "contact_email": "contact@example.org",
                "can_decide": True,
                "active": True,
                "recorded_by": ACTOR.name,
                "recorded_at": _utc(created[i]),
            }
            for i in range(partnerships)
            for name, sector in zip(
                PARTNERS, ("government", "civil-society", "private"), strict=True
            )
        )
        for chunk in _chunks(partners, BATCH):
            conn.execute(insert(m.Partner.__table__), chunk)  # type: ignore[attr-defined]
        profiles = (
            {
                "partnership_id": i + 1,
                "challenge": "Safe water all year",
                "lead_organization": PARTNERS[0],
                "recorded_by": ACTOR.name,
                "recorded_at": _utc(created[i]),
            }
            for i in range(partnerships)
        )
        for chunk in _chunks(profiles, BATCH):
            conn.execute(insert(m.Profile.__table__), chunk)  # type: ignore[attr-defined]
    delivering = [i for i in range(partnerships) if 6 <= state[i] < len(states)]
    schedules, flags = _schedules(delivering, created, rng)
    with engine.begin() as conn:
        tables: list[tuple[Any, list[dict[str, Any]]]] = [
            (m.Schedule, schedules),
            (m.FiredTrigger, flags),
        ]
        for model, rows in tables:
            for chunk in _chunks(rows, BATCH):
                conn.execute(insert(model.__table__), chunk)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # Rows were given explicit ids: move the sequences past them.
            for table, n in (
                ("partnership", partnerships),
                ("schedule", len(schedules)),
                ("fired_trigger", len(flags)),
            ):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"),
                    {"n": max(n, 1)},
                )


#: The schedules every partnership in delivery has (FRAMEWORK.md section 4).
SCHEDULED = (("coordination-meeting", "meeting"), ("monitoring", "monitoring"))


def _schedules(
    delivering: list[int], created: list[datetime], rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Schedule rows for partnerships in delivery, and open overdue flags on some."""
    schedules: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    for i in delivering:
        first = (created[i] + timedelta(days=120)).date().replace(day=rng.randint(1, 28))
        for kind, record_kind in SCHEDULED:
            sid = len(schedules) + 1
            schedules.append(
                {
                    "id": sid,
                    "partnership_id": i + 1,
                    "recorded_by": ACTOR.name,
                    "recorded_at": _utc(created[i] + timedelta(days=100)),
                    "kind": kind,
                    "cadence": "monthly",
                    "starts_on": first,
                    "local_time": "09:00",
                    "timezone": "UTC",
                    "lead_days": "7,1",
                    "grace_days": 7,
                    "active": True,
                }
            )
            if kind == "coordination-meeting" and rng.random() < 0.1:
                # A meeting last month whose minutes never came.
                occurrence = datetime(START.year - 1, 12, first.day, 9, 0, tzinfo=timezone.utc)
                day = occurrence.date()
                flags.append(
                    {
                        "id": len(flags) + 1,
                        "key": f"s{sid}:overdue:{occurrence:%Y-%m-%dT%H:%MZ}",
                        "partnership_id": i + 1,
                        "schedule_id": sid,
                        "purpose": "overdue",
                        "occurrence": occurrence,
                        "due_at": occurrence + timedelta(days=7),
                        "fired_at": occurrence + timedelta(days=7, minutes=5),
                        "late": False,
                        "outcome": "notified",
                        "detail": _dumps(
                            {
                                "schedule": kind,
                                "schedule_id": sid,
                                "occurrence": f"{occurrence:%Y-%m-%dT%H:%MZ}",
                                "record": record_kind,
                                "window": [
                                    str(day - timedelta(days=15)),
                                    str(day + timedelta(days=15)),
                                ],
                                "grace_days": 7,
                                "task": "7.1",
                            }
                        ),
                        "sweeper": "bench",
                        "resolved_at": None,
                    }
                )
    return schedules, flags


def _chunks(rows: Any, size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _utc(at: datetime) -> datetime:
    """SQLModel's datetime columns take aware values (stored as UTC)."""
    return at.astimezone(timezone.utc)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def pg_portfolio(base: str, partnerships: int, events: int, say: Any = print) -> Portfolio:
    """The PostgreSQL portfolio of this size: a database named by its cache key."""
    from benchmarks import pgserver

    key = cache_key(partnerships, events, "postgresql")
    prefix = f"bench_portfolio_{partnerships}_{events}_"
    name = prefix + key
    url = pgserver.database_url(base, name)
    if pgserver.database_exists(base, name):
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                done = conn.execute(text("SELECT to_regclass('bench_done')")).scalar()
        finally:
            engine.dispose()
        if done is not None:
            return Portfolio(url, partnerships, events, key, 0.0)
    for stale in pgserver.databases(base, prefix):
        pgserver.drop_database(base, stale)
    say(f"  generating {partnerships:,} partnerships / {events:,} events into database {name} ...")
    start = time.perf_counter()
    pgserver.create_database(base, name)
    engine = make_engine(url)
    try:
        generate(engine, partnerships, events)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            conn.execute(text("CREATE TABLE bench_done (generated_at timestamptz DEFAULT now())"))
    finally:
        engine.dispose()
    seconds = time.perf_counter() - start
    say(f"  generated in {seconds:.1f} s")
    return Portfolio(url, partnerships, events, key, seconds)
