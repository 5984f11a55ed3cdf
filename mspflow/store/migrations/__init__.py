"""Schema migrations (Alembic), shipped inside the package.

An installed mspflow upgrades its own database with ``mspflow db upgrade``; no
checkout or ``alembic.ini`` is needed. Revision ``NNNN`` (in ``versions/``)
brings the schema to version ``N``, the number kept in the ``schema_version``
row, so this code knows which revisions exist without reading the scripts:
those numbered 1 to :data:`~mspflow.store.models.SCHEMA_VERSION`.

An upgrade is one transaction (both backends have transactional DDL): it
happens completely or not at all. Two upgrades started at once queue: on
PostgreSQL behind an advisory lock, on SQLite behind ``BEGIN IMMEDIATE``.

To add a revision: change the models, bump ``SCHEMA_VERSION``, copy the newest
file in ``versions/`` and write the change out with ``op`` calls (ending with the
``schema_version`` update). ``tests/store/test_migrations.py`` fails until the
upgraded database and the models agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, inspect, text

from mspflow.errors import StorageError
from mspflow.store.db import _WRITE, _redact
from mspflow.store.models import SCHEMA_VERSION

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "HEAD",
    "KNOWN",
    "Status",
    "config",
    "read_status",
    "revision_for",
    "script",
    "status",
    "upgrade",
]

_LOCK_KEY = 0x6D736D  # "msm": one advisory lock for schema changes on PostgreSQL


def revision_for(version: int) -> str:
    """The revision that brings the schema to ``version``."""
    return f"{version:04d}"


HEAD = revision_for(SCHEMA_VERSION)
KNOWN = tuple(revision_for(v) for v in range(1, SCHEMA_VERSION + 1))


@dataclass(frozen=True)
class Status:
    """Where a database stands.

    ``state`` is one of: ``empty`` (no tables), ``foreign`` (tables, but not
    mspflow's), ``legacy`` (made before migrations: a schema version and no
    revision), ``behind``, ``current``, ``newer`` (made by a newer mspflow) or
    ``unknown`` (a revision this code has never heard of).
    """

    state: str
    revision: str | None
    schema_version: int | None
    head: str = HEAD

    @property
    def usable(self) -> bool:
        return self.state == "current"

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "revision": self.revision,
            "schema_version": self.schema_version,
            "head": self.head,
            "up_to_date": self.usable,
        }

    def problem(self, where: str) -> StorageError | None:
        """The error a command gets on this database, or None when it is usable."""
        v, r = self.schema_version, self.revision
        if self.state == "current":
            return None
        if self.state in ("empty", "foreign"):
            return StorageError(
                f"the database at {where} is not an mspflow database (no schema_version table)",
                hint="create one first",
                action="init",
                field="db",
            )
        if self.state == "newer" and v is not None and v > SCHEMA_VERSION:
            return StorageError(
                f"database schema version {v} is not supported by this mspflow "
                f"(it uses version {SCHEMA_VERSION})",
                hint="upgrade mspflow",
            )
        if self.state == "newer":
            return StorageError(
                f"database schema revision {r} is newer than this mspflow (its newest is {HEAD})",
                hint="upgrade mspflow",
            )
        if self.state == "unknown":
            return StorageError(
                f"database schema revision {r} (version {v}) is unknown to this mspflow "
                f"(it knows {KNOWN[0]} to {HEAD})",
                hint="check that this is the right database",
                field="db",
            )
        if self.state == "legacy":
            return StorageError(
                f"database schema version {v} has no migration record "
                "(it was made before mspflow used migrations)",
                hint="upgrade its schema once",
                action="upgrade",
            )
        return StorageError(
            f"database schema version {v} is not supported by this mspflow "
            f"(it uses version {SCHEMA_VERSION})",
            hint="upgrade its schema",
            action="upgrade",
        )


def read_status(conn: Connection) -> Status:
    """Classify the database behind ``conn`` with plain SQL (no Alembic import)."""
    tables = set(inspect(conn).get_table_names())
    if not tables - {"alembic_version"}:
        return Status("empty", None, None)
    if "schema_version" not in tables:
        return Status("foreign", None, None)
    version = conn.execute(text("SELECT version FROM schema_version WHERE id = 1")).scalar()
    revisions: list[str] = []
    if "alembic_version" in tables:
        revisions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if len(revisions) > 1:
        return Status("unknown", ",".join(sorted(revisions)), version)
    revision = revisions[0] if revisions else None
    if version is not None and version > SCHEMA_VERSION:
        return Status("newer", revision, version)
    if revision is None:
        state = "legacy" if version is not None and version >= 1 else "unknown"
        return Status(state, None, version)
    if revision not in KNOWN:
        newer = revision.isdigit() and int(revision) > SCHEMA_VERSION
        return Status("newer" if newer else "unknown", revision, version)
    if version != int(revision):
        return Status("unknown", revision, version)
    return Status("current" if revision == HEAD else "behind", revision, version)


def status(engine: Engine) -> Status:
    with engine.connect() as conn:
        return read_status(conn)


def config() -> Config:
    """An Alembic configuration pointing at the scripts beside this module."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent))
    return cfg


@lru_cache(maxsize=1)
def script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


def upgrade(engine: Engine, target: str = "head") -> tuple[Status, Status]:
    """Bring the database to ``target`` in one transaction; (before, after).

    An empty database gets the whole schema. A database made before migrations
    is first recorded at the revision matching its schema version.
    """
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext

    where = _redact(str(engine.url))
    scripts = script()
    with engine.execution_options(**{_WRITE: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        before = read_status(conn)
        if before.state in ("foreign", "newer", "unknown"):
            problem = before.problem(where)
            assert problem is not None
            raise problem
        if before.state == "legacy":
            assert before.schema_version is not None
            MigrationContext.configure(conn).stamp(scripts, revision_for(before.schema_version))
        cfg = config()
        cfg.attributes["connection"] = conn

        def steps(rev: Any, _context: Any) -> Any:
            return scripts._upgrade_revs(target, rev)

        with EnvironmentContext(cfg, scripts, fn=steps, destination_rev=target):
            scripts.run_env()
        after = read_status(conn)
    return before, after
