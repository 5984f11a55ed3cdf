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
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from mspflow.errors import InvalidInput, StorageError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "default_url",
    "engine_url",
    "is_in_memory",
    "make_engine",
    "read_session",
    "redact",
    "resolve_url",
    "sqlite_path",
    "storage_error",
    "where",
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
    """``--db`` (a URL or a file path) wins over ``MSPFLOW_DATABASE_URL`` over the default.

    A path, or the path of a ``sqlite:///`` URL, has ``~`` expanded and is made
    absolute, so that messages name the file and no folder called ``~`` appears.
    """
    if db is not None and not db.strip():
        raise InvalidInput(
            "the database is named by an empty value",
            hint="name a database file or URL",
            field="db",
        )
    value = db or os.environ.get("MSPFLOW_DATABASE_URL") or default_url()
    if "\x00" in value:
        raise InvalidInput(
            "the database path contains a NUL character", hint="check its name", field="db"
        )
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    path = sqlite_path(value)
    if path and not is_in_memory(value) and not path.startswith("file:"):
        query = value.partition("?")[2]
        return f"sqlite:///{Path(path).expanduser().resolve()}" + (f"?{query}" if query else "")
    return value


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (``""`` for an in-memory one); None for other databases."""
    if not url.startswith("sqlite"):
        return None
    rest = url.split("://", 1)[1] if "://" in url else ""
    path = rest[1:] if rest.startswith("/") else rest
    return path.partition("?")[0]


def is_in_memory(url: str) -> bool:
    """Whether ``url`` names a SQLite database that vanishes when the process ends."""
    path = sqlite_path(url)
    if path is None:
        return False
    query = url.partition("?")[2]
    return path in ("", ":memory:") or path.startswith("file::memory:") or "mode=memory" in query


def redact(url: str) -> str:
    """``url`` fit to print: the password (also one given as a query parameter) hidden."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: hide everything between :// and @
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return url
    hidden = ("password", "passfile", "sslpassword")
    secret = {k: "***" for k in parsed.query if k.lower() in hidden}
    if parsed.password is None and not secret:
        return url
    if secret:
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True)


_redact = redact  # the name the migrations import


def where(url: str) -> str:
    """How messages name the database: the file for SQLite, the redacted URL otherwise."""
    path = sqlite_path(url)
    return _short(path.removeprefix("file:") if path else redact(url))


def _short(name: object, limit: int = 200) -> str:
    """A path or URL cut in the middle if it would make a message line unreadable."""
    text = str(name)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"


def engine_url(engine: Engine) -> str:
    """The URL ``engine`` was made for (its password kept: pass it to :func:`where`)."""
    return engine.url.render_as_string(hide_password=False)


def make_engine(url: str, *, create_dirs: bool = False, read_only: bool = False) -> Engine:
    """An engine with mspflow's connection settings for ``url``.

    A SQLite file that cannot be written (its mode, its folder or a read-only
    file system) is opened read-only whatever ``read_only`` says: reads work,
    and a write fails with "read-only" (a StorageError) instead of half-way.
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url, create_dirs=create_dirs, read_only=read_only)
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"cannot use database URL {redact(url)}: {exc}") from None
    if read_only:
        engine = engine.execution_options(postgresql_readonly=True)
    return engine


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _writable(path: Path) -> bool:
    """Whether this process may write ``path`` and create its -wal/-shm files beside it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _check_sqlite_file(path: Path) -> None:
    """Refuse what is not an SQLite database before SQLite touches it (or writes
    -wal/-shm files beside a device)."""
    if path.is_dir():
        raise StorageError(
            f"{_short(path)} is a folder, not a database", hint="name a database file inside it"
        )
    if not path.is_file():
        raise StorageError(
            f"{_short(path)} is not a database file (a device, a FIFO or a socket)",
            hint="name a database file, or create one",
            action="init",
            field="db",
        )
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StorageError(f"cannot read the database {_short(path)}: {exc.strerror}") from None
    if head and head != _SQLITE_MAGIC:
        raise StorageError(
            f"{_short(path)} is not an SQLite database",
            hint="check which database is named, or create one",
            action="init",
            field="db",
        )


def _check_location(file: Path, *, create_dirs: bool) -> bool:
    """Whether there is a database at ``file``; refuses what is not one, and an empty
    file unless ``create_dirs`` (``init``) says it may become one."""
    if create_dirs:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the folder {_short(file.parent)}: {exc.strerror}",
                hint="choose a database path in a folder you may write",
            ) from None
    if not file.exists():
        if not create_dirs:
            raise StorageError(
                f"no database at {_short(file)}",
                hint="create it, or name one that exists",
                action="init",
                field="db",
            )
        return False
    _check_sqlite_file(file)
    if not create_dirs and file.stat().st_size == 0:
        raise StorageError(
            f"{_short(file)} is an empty file, not an mspflow database",
            hint="creating a database there makes it one",
            action="init",
            field="db",
        )
    return True


def _sqlite_engine(url: str, *, create_dirs: bool, read_only: bool) -> Engine:
    path = sqlite_path(url) or ""
    connect_args: dict[str, Any] = {"timeout": BUSY_TIMEOUT_MS / 1000}
    if path and not path.startswith("file:") and path != ":memory:":
        file = Path(path)
        try:
            exists = _check_location(file, create_dirs=create_dirs)
        except OSError as exc:  # a name too long, a loop of links, a file where a folder is
            raise StorageError(
                f"cannot use {_short(path)} as the database: {exc.strerror}",
                hint="check which database is named",
                field="db",
            ) from None
        if exists and not _writable(file):
            read_only = True
            wal = Path(f"{path}-wal")
            # Nothing to merge from a WAL file: read the file as it is, without
            # the -shm/-wal files a read-only connection would otherwise leave.
            if not wal.exists() or wal.stat().st_size == 0:
                url = f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"
            else:
                url = f"sqlite:///file:{path}?mode=ro&uri=true"
        elif read_only:
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


def storage_error(exc: BaseException, url: str) -> StorageError | None:
    """The one-line error for a database failure ``exc`` on ``url``, or None if it is not one.

    Covers what the database says about itself (busy, read-only, full, not a
    database, unreachable, login refused); constraint and data errors are left
    to the layers that know the input.
    """
    import sqlite3

    from sqlalchemy.exc import DBAPIError, IntegrityError

    orig: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    if isinstance(exc, IntegrityError) or isinstance(orig, sqlite3.IntegrityError):
        return None
    from_psycopg = type(orig).__module__.split(".")[0] == "psycopg"
    if not (isinstance(exc, DBAPIError) or isinstance(orig, sqlite3.DatabaseError) or from_psycopg):
        return None
    name = type(orig).__name__
    if name in ("IntegrityError", "DataError", "ProgrammingError", "NotSupportedError"):
        return None
    text = " ".join(str(orig).split())
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    text = _short(text, 300)
    low = text.lower()
    place = where(url)
    if "locked" in low or "lock timeout" in low or "busy" in low:
        return StorageError(
            f"database busy: another process held the lock on {place} for too long; "
            "nothing was written",
            hint="retry the command in a moment",
        )
    if "readonly" in low or "read-only" in low:
        return StorageError(
            f"the database {place} is read-only; nothing was written",
            hint="audit commands can read it; to change it, make the file and its folder writable",
        )
    if "full" in low or "no space left" in low or "quota" in low or _disk_full(url, low):
        return StorageError(
            f"the disk holding {place} is full; nothing was written",
            hint="free some space and run the command again",
        )
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return StorageError(
            f"{place} is not an SQLite database, or is damaged ({text})",
            hint="check which database is named, or restore the file from a backup",
            field="db",
        )
    if "authentication" in low or "password" in low or ("role" in low and "does not exist" in low):
        return StorageError(
            f"cannot log in to {place}: {text}",
            hint="check the user name and password in the URL",
        )
    if sqlite_path(url) is None:
        return StorageError(
            f"cannot use the database {place}: {text}",
            hint="check that the server is running and the URL is right",
        )
    return StorageError(f"cannot use the database {place}: {text}")


def _disk_full(url: str, message: str) -> bool:
    """Whether SQLite's "disk I/O error" comes from a full disk (it says no more than that
    when it cannot grow the -shm or -wal file)."""
    path = sqlite_path(url)
    if not path or "i/o error" not in message:
        return False
    try:
        st = os.statvfs(Path(path.removeprefix("file:")).parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def _secrets(url: str) -> list[str]:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return []
    found = [str(parsed.password)] if parsed.password else []
    found += [str(v) for k, v in parsed.query.items() if "password" in k.lower()]
    return [s for s in found if s]


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
