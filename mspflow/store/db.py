"""Opening the database: URL resolution, SQLite settings, schema version.

The engine is always created here and passed in by the caller; no module keeps
a global engine. SQLite runs in WAL mode with ``synchronous=FULL`` (a committed
transition survives a power cut) and foreign keys on; write transactions start
with ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of
failing half-way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session, SQLModel, select

from mspflow.errors import StorageError
from mspflow.store import models
from mspflow.store.models import SCHEMA_VERSION, SchemaVersion

__all__ = [
    "BUSY_TIMEOUT_MS",
    "check_schema",
    "create_schema",
    "default_url",
    "make_engine",
    "read_session",
    "resolve_url",
    "write_session",
]

BUSY_TIMEOUT_MS = 30_000
_WRITE = "mspflow_write"


def default_url() -> str:
    """A SQLite file in the user's data directory (e.g. ``~/.local/share/mspflow``)."""
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("mspflow", appauthor=False))
    return f"sqlite:///{folder / 'mspflow.db'}"


def resolve_url(db: str | None) -> str:
    """``--db`` (a URL or a file path) wins over ``MSPFLOW_DATABASE_URL`` over the default."""
    value = db or os.environ.get("MSPFLOW_DATABASE_URL") or default_url()
    if "://" not in value:
        value = f"sqlite:///{Path(value).expanduser().resolve()}"
    return value


def make_engine(url: str, *, create_dirs: bool = False, read_only: bool = False) -> Engine:
    """An engine with mspflow's connection settings for ``url``."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, create_dirs=create_dirs, read_only=read_only)
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"cannot use database URL {_redact(url)}: {exc}") from None
    if read_only:
        engine = engine.execution_options(postgresql_readonly=True)
    return engine


def _sqlite_engine(url: str, *, create_dirs: bool, read_only: bool) -> Engine:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        folder = Path(path).parent
        if create_dirs:
            folder.mkdir(parents=True, exist_ok=True)
        elif not Path(path).exists():
            raise StorageError(
                f"no database at {path}",
                hint="create it with 'mspflow init', or point --db / MSPFLOW_DATABASE_URL at one",
            )
    connect_args: dict[str, Any] = {"timeout": BUSY_TIMEOUT_MS / 1000}
    if read_only and path:
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    engine = create_engine(url, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below be the only transaction control.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not read_only:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


#: The history is append-only in the database itself, not only by convention:
#: an UPDATE or DELETE fails. (Someone with the database's owner rights can
#: still drop the triggers; that is what hash-chain verification is for.)
_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS history_event_no_update BEFORE UPDATE ON history_event "
        "BEGIN SELECT RAISE(ABORT, 'history_event is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS history_event_no_delete BEFORE DELETE ON history_event "
        "BEGIN SELECT RAISE(ABORT, 'history_event is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION mspflow_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'history_event is append-only'; END $$",
        "DROP TRIGGER IF EXISTS history_event_append_only ON history_event",
        "CREATE TRIGGER history_event_append_only BEFORE UPDATE OR DELETE ON history_event "
        "FOR EACH ROW EXECUTE FUNCTION mspflow_append_only()",
    ],
}


def create_schema(engine: Engine) -> None:
    """Create every table and stamp the schema version (idempotent)."""
    try:
        SQLModel.metadata.create_all(engine, tables=_tables())
        with engine.begin() as conn:
            for statement in _APPEND_ONLY.get(engine.dialect.name, []):
                conn.exec_driver_sql(statement)
        with write_session(engine) as session:
            if session.get(SchemaVersion, 1) is None:
                session.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
    except OperationalError as exc:
        raise StorageError(f"cannot create the database: {exc.orig}") from None
    check_schema(engine)


def _tables() -> list[Any]:
    assert models.SCHEMA_VERSION  # the import registers the tables on the metadata
    return list(SQLModel.metadata.sorted_tables)


def check_schema(engine: Engine) -> None:
    """Refuse a database whose schema this code does not know."""
    try:
        if not inspect(engine).has_table("schema_version"):
            raise StorageError(
                f"the database at {_redact(str(engine.url))} is not an mspflow database "
                "(no schema_version table)",
                hint="run 'mspflow init' to create one",
            )
        with Session(engine) as session:
            row = session.exec(select(SchemaVersion)).first()
    except OperationalError as exc:
        raise StorageError(f"cannot open the database: {exc.orig}") from None
    found = row.version if row else None
    if found != SCHEMA_VERSION:
        newer = found is not None and found > SCHEMA_VERSION
        raise StorageError(
            f"database schema version {found} is not supported by this mspflow "
            f"(it uses version {SCHEMA_VERSION})",
            hint="upgrade mspflow" if newer else "run 'mspflow db upgrade'",
        )


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed on success, rolled back on any error."""
    bound = engine.execution_options(**{_WRITE: True})
    with Session(bound, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session
