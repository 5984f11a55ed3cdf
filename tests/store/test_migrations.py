"""Schema migrations: the revisions build what the models describe, upgrades keep every
row, and a database this code does not know is refused — on every backend."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel, col, select

from mspflow import history
from mspflow.clock import ManualClock
from mspflow.definition import Workflow
from mspflow.errors import StorageError
from mspflow.services import Mspflow
from mspflow.services.users import add_first_user
from mspflow.store import check_schema, create_schema, make_engine, read_session, write_session
from mspflow.store import models as m
from mspflow.store.migrations import HEAD, KNOWN, read_status, revision_for, script, upgrade
from tests.conftest import SECRETARIAT, invoke


@pytest.fixture
def bare(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database (no schema yet)."""
    engine = make_engine(db_url, create_dirs=True)
    yield engine
    engine.dispose()


def cli(url: str, *args: str, code: int = 0) -> str:
    env = {"MSPFLOW_DATABASE_URL": url, "MSPFLOW_ACTOR": "ana", "MSPFLOW_NOW": "2027-02-01T09:00Z"}
    result = invoke(*args, env=env)
    assert result.exit_code == code, (args, result.output)
    return result.output


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mspflow: "), lines
    return lines[0]


def revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# --------------------------------------------------------------------------- the scripts


def test_revisions_form_one_line_numbered_by_schema_version() -> None:
    scripts = script()
    assert scripts.get_heads() == [HEAD]
    chain = [r.revision for r in reversed(list(scripts.walk_revisions()))]
    assert tuple(chain) == KNOWN == tuple(revision_for(v) for v in range(1, m.SCHEMA_VERSION + 1))
    for rev in scripts.walk_revisions():
        expected = None if rev.revision == KNOWN[0] else revision_for(int(rev.revision) - 1)
        assert rev.down_revision == expected


def test_upgraded_database_matches_the_models(bare: Engine) -> None:
    create_schema(bare)
    with bare.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []
    assert revision(bare) == HEAD


def test_each_revision_stamps_its_schema_version(bare: Engine) -> None:
    for rev in KNOWN:
        _, after = upgrade(bare, rev)
        assert (after.revision, after.schema_version) == (rev, int(rev))
        assert after.state == ("current" if rev == HEAD else "behind")
    check_schema(bare)


def test_append_only_triggers_come_with_the_first_revision(bare: Engine) -> None:
    upgrade(bare, KNOWN[0])
    with write_session(bare) as s:
        s.execute(
            text(
                "INSERT INTO history_event (seq, partnership, at, actor, role, kind, waived, "
                "evidence, definition, data, prev_hash, hash) VALUES (1, 'p', 'now', 'a', 'r', "
                "'k', '[]', '{}', 'd', '{}', 'x', 'y')"
            )
        )
    with pytest.raises(Exception, match="append-only"), write_session(bare) as s:
        s.execute(text("UPDATE history_event SET actor = 'mallory'"))


# --------------------------------------------------------------------------- upgrading data


def _fill(engine: Engine, wf: Workflow, wf_text: str) -> None:
    """Partnerships, evidence, waivers, gate debt and history, written at revision 0001."""
    from mspflow.walk import WALK, record_piece

    clock = ManualClock(_start())
    add_first_user(engine, clock.now(), "ana", "ana@example.org")
    Mspflow(engine=engine, clock=clock, actor=SECRETARIAT).users.add(
        name="ivo", role="auditor", email=None
    )
    service = Mspflow(engine=engine, clock=clock, actor=SECRETARIAT)
    water = service.partnerships.create(name="Safe water", workflow=wf, definition_text=wf_text).id
    for step in (1, 2, 3):
        for records in WALK[step].values():
            record_piece(service.as_user(SECRETARIAT), water, records)
        service.partnerships.move(partnership=water, kind="advance")
    service.partnerships.move(
        partnership=water, kind="revisit", dest="2", reason="a partner withdrew"
    )
    ongoing = service.partnerships.create(
        name="Ongoing", workflow=wf, definition_text=wf_text, at_step="5"
    ).id
    service.partnerships.waive(
        partnership=ongoing, criterion="challenge-framed", reason="set by the charter", step="1"
    )
    service.evidence.record(
        partnership=ongoing, kind="lesson", values={"text": "Start with the water users"}
    )


def _downgrade(engine: Engine, target: str) -> None:
    """Take the database back to ``target`` with the revisions' own downgrade steps."""
    from alembic.runtime.environment import EnvironmentContext

    from mspflow.store.migrations import config, script

    scripts = script()
    with engine.execution_options(mspflow_write=True).begin() as conn:
        cfg = config()
        cfg.attributes["connection"] = conn

        def steps(rev: Any, _context: Any) -> Any:
            return scripts._downgrade_revs(target, rev)

        with EnvironmentContext(cfg, scripts, fn=steps, destination_rev=target):
            scripts.run_env()


def _start() -> Any:
    from datetime import datetime, timezone

    return datetime(2027, 1, 4, 9, 0, tzinfo=timezone.utc)


def _counts(engine: Engine, tables: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables}


def _chain(engine: Engine) -> list[m.HistoryEvent]:
    with read_session(engine) as s:
        return list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))


def test_upgrade_from_the_first_revision_keeps_every_row(
    db_url: str, msp: Workflow, msp_text: str
) -> None:
    # The data is written by today's code, then the schema is taken back to the
    # first revision: the rows a database of revision 0001 would hold.
    engine = make_engine(db_url, create_dirs=True)
    upgrade(engine)
    _fill(engine, msp, msp_text)
    _downgrade(engine, KNOWN[0])
    old_tables = sorted(set(inspect(engine).get_table_names()) - {"alembic_version"})
    before = _counts(engine, old_tables)
    chain_before = [(e.seq, e.hash) for e in _chain(engine)]
    assert before["partnership"] == 2 and before["history_event"] == 7 and before["partner"] == 3
    with pytest.raises(StorageError, match="upgrade its schema") as info:
        check_schema(engine)
    assert info.value.action == "upgrade"
    engine.dispose()

    refused = one_line(cli(db_url, "partnership", "list", code=9))
    assert "is not supported" in refused and "(upgrade its schema: 'mspflow db upgrade')" in refused
    out = cli(db_url, "db", "upgrade")
    assert f"upgraded from revision {KNOWN[0]} to {HEAD}" in out
    assert "up to date" in cli(db_url, "db", "upgrade")  # a second run changes nothing

    engine = make_engine(db_url)
    try:
        check_schema(engine)
        assert _counts(engine, old_tables) == before
        chain = _chain(engine)
        assert [(e.seq, e.hash) for e in chain] == chain_before
        assert list(history.verify(chain)) == []
    finally:
        engine.dispose()
    listing = json.loads(cli(db_url, "partnership", "list", "--json"))
    assert {p["id"]: p["step"]["number"] for p in listing} == {"safe-water": 2, "ongoing": 5}
    assert json.loads(cli(db_url, "debt", "list", "ongoing", "--json"))[0]["status"] == "waived"
    moved = json.loads(cli(db_url, "advance", "safe-water", "--json"))
    assert moved["step"]["number"] == 3 and moved["event"] == len(chain_before) + 1


def test_a_database_made_before_migrations_is_adopted(
    bare: Engine, msp: Workflow, msp_text: str
) -> None:
    """Version 0.1 created its tables without Alembic: a schema_version row, no revision."""
    upgrade(bare)
    _fill(bare, msp, msp_text)
    _downgrade(bare, KNOWN[0])
    with write_session(bare) as s:
        s.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(StorageError, match="no migration record"):
        check_schema(bare)
    before, after = upgrade(bare)
    assert (before.state, before.revision, after.revision) == ("legacy", None, HEAD)
    check_schema(bare)
    assert list(history.verify(_chain(bare))) == []


# --------------------------------------------------------------------------- refusing


def test_newer_or_unknown_revisions_are_refused(db_url: str) -> None:
    cli(db_url, "init", "--admin", "ana")
    engine = make_engine(db_url)
    try:
        for stamped, message in (("0099", "revision 0099 is newer"), ("c0ffee", "unknown")):
            with write_session(engine) as s:
                s.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": stamped})
            for args in (("partnership", "list"), ("db", "upgrade"), ("init", "--admin", "ana")):
                assert message in one_line(cli(db_url, *args, code=9))
            current = json.loads(cli(db_url, "db", "current", "--json"))
            assert current["revision"] == stamped and current["up_to_date"] is False
    finally:
        engine.dispose()


def test_newer_schema_version_is_refused_with_the_same_message(db_url: str) -> None:
    cli(db_url, "init", "--admin", "ana")
    engine = make_engine(db_url)
    with write_session(engine) as s:
        s.execute(text("UPDATE schema_version SET version = :v"), {"v": m.SCHEMA_VERSION + 1})
    engine.dispose()
    line = one_line(cli(db_url, "db", "upgrade", code=9))
    assert f"schema version {m.SCHEMA_VERSION + 1} is not supported" in line
    assert "upgrade mspflow" in line


def test_a_foreign_database_is_left_alone(bare: Engine) -> None:
    with bare.begin() as conn:
        conn.execute(text("CREATE TABLE accounts (id integer)"))
    with pytest.raises(StorageError, match="not an mspflow database"):
        upgrade(bare)
    assert sorted(inspect(bare).get_table_names()) == ["accounts"]


# --------------------------------------------------------------------------- the commands


def test_db_upgrade_on_an_empty_database_then_current(bare: Engine, db_url: str) -> None:
    bare.connect().close()  # an empty SQLite file exists now
    empty = json.loads(cli(db_url, "db", "current", "--json"))
    assert (empty["state"], empty["revision"], empty["head"]) == ("empty", None, HEAD)
    assert json.loads(cli(db_url, "db", "upgrade", "--json"))["to"] == HEAD
    current = json.loads(cli(db_url, "db", "current", "--json"))
    assert current == {
        "database": current["database"],
        "state": "current",
        "revision": HEAD,
        "schema_version": m.SCHEMA_VERSION,
        "head": HEAD,
        "up_to_date": True,
    }
    assert f"revision {HEAD}" in cli(db_url, "db", "current")
    assert "user ana (secretariat) created" in cli(db_url, "init", "--admin", "ana")


def test_two_upgrades_at_once_both_end_at_head(db_url: str) -> None:
    engines = [make_engine(db_url, create_dirs=True) for _ in range(2)]
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def run(engine: Engine) -> None:
        barrier.wait()
        try:
            results.append(upgrade(engine))
        except BaseException as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for engine in engines:
        engine.dispose()
    assert all(isinstance(r, tuple) for r in results), results
    assert sorted(before.revision or "" for before, _ in results) == ["", HEAD]
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert read_status(conn).state == "current"
        assert conn.execute(text("SELECT count(*) FROM schema_version")).scalar_one() == 1
    engine.dispose()
