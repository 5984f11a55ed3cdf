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

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session

from mspflow.errors import StorageError

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
            _wal(cur)
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _wal(cur: Any) -> None:
    """Put the file in WAL mode (it stays so). Switching a new file needs it to
    itself, and SQLite answers "locked" at once instead of waiting on the busy
    timeout, so two processes opening a new database together wait here."""
    import sqlite3
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest schema by running the migrations (idempotent).

    An empty database gets every table, the append-only triggers on the
    history and the schema_version row (revision 0001 onwards); an existing
    one is upgraded, or refused if it is not mspflow's or is newer.
    """
    from mspflow.store import migrations

    try:
        migrations.upgrade(engine)
    except OperationalError as exc:
        raise StorageError(f"cannot create the database: {exc.orig}") from None
    check_schema(engine)


def check_schema(engine: Engine) -> None:
    """Refuse a database whose schema this code does not know, or that needs upgrading.

    Both the ``schema_version`` row and the migration revision must be the ones
    this code was written for.
    """
    from mspflow.store import migrations

    try:
        found = migrations.status(engine)
    except OperationalError as exc:
        raise StorageError(f"cannot open the database: {exc.orig}") from None
    problem = found.problem(_redact(str(engine.url)))
    if problem is not None:
        raise problem


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
