"""Setting a database up and upgrading its schema.

These work on a database that may not be at this mspflow's schema yet, so they
open it themselves instead of through a facade (which refuses such a one).
Upgrading names a user of the database like every other operation, read from
the ``app_user`` table that every schema revision has, and needs the
secretariat role; a database without users (empty, not mspflow's, or not yet
given its first user) has nobody to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mspflow.auth import Actor
from mspflow.clock import Clock, SystemClock
from mspflow.services.context import Context

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mspflow.store.migrations import Status

__all__ = ["Initialised", "Upgraded", "current", "init", "upgrade"]


@dataclass(frozen=True)
class Initialised:
    database: str
    admin: str
    created: bool  # False: the user existed already (init run twice)


@dataclass(frozen=True)
class Upgraded:
    database: str
    before: str | None
    after: str


def _where(url: str) -> str:
    from mspflow.store import where

    return where(url)


def init(
    database: str | None, *, admin: str, email: str | None = None, clock: Clock | None = None
) -> Initialised:
    """Create the database (or bring an empty one to the schema) and its first
    secretariat user."""
    from mspflow.services.users import add_first_user
    from mspflow.store import create_schema, make_engine

    url = Context(database).persistent_url()
    engine = make_engine(url, create_dirs=True)
    try:
        create_schema(engine)
        created = add_first_user(engine, (clock or SystemClock()).now(), admin, email)
    finally:
        engine.dispose()  # its connections would otherwise stay open until exit
    return Initialised(_where(url), admin, created)


def _check_user(engine: Engine, actor: str | None, *roles: str, action: str = "") -> None:
    """Unless the database has no users: the actor must be one (with one of ``roles``)."""
    from sqlalchemy import inspect, text

    from mspflow.auth import actor_name, find_actor
    from mspflow.services.policy import Policy
    from mspflow.store import read_session

    with engine.connect() as conn:
        if "app_user" not in inspect(conn).get_table_names():
            return
        if not conn.execute(text("SELECT count(*) FROM app_user")).scalar():
            return
    with read_session(engine) as s:
        found: Actor = find_actor(s, actor_name(actor))
    if roles:
        Policy(Context(engine=engine), found).require_role(*roles, action=action)


def upgrade(database: str | None, *, actor: str | None) -> Upgraded:
    """Bring the database to this mspflow's schema (one transaction; safe to repeat)."""
    from mspflow.store import make_engine
    from mspflow.store.migrations import upgrade as run

    url = Context(database).persistent_url()
    engine = make_engine(url)
    try:
        _check_user(engine, actor, "secretariat", action="upgrade the database")
        before, after = run(engine)
    finally:
        engine.dispose()
    return Upgraded(_where(url), before.revision, after.revision or "")


def current(database: str | None, *, actor: str | None) -> tuple[str, Status]:
    """The database's schema revision and version, and whether it needs upgrading."""
    from mspflow.store import make_engine
    from mspflow.store.migrations import status

    url = Context(database).persistent_url()
    engine = make_engine(url)
    try:
        _check_user(engine, actor)
        found = status(engine)
    finally:
        engine.dispose()
    return _where(url), found
