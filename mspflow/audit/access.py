"""Opening a database for an audit: read-only, and only for the roles that audit."""

from __future__ import annotations

from sqlalchemy import Engine

from mspflow.auth import Actor, find_actor, require_role
from mspflow.store import check_schema, make_engine, read_session

__all__ = ["AUDIT_ROLES", "authorize", "open_read_only"]

#: Auditors read everything; the secretariat may check its own records too.
AUDIT_ROLES = ("auditor", "secretariat")


def open_read_only(url: str) -> Engine:
    """An engine that cannot write: SQLite ``mode=ro``, PostgreSQL read-only transactions."""
    engine = make_engine(url, read_only=True)
    try:
        check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def authorize(engine: Engine, name: str | None) -> Actor:
    """The acting user, if their role may run audit commands (else exit 6)."""
    with read_session(engine) as s:
        actor = find_actor(s, name)
    require_role(actor, *AUDIT_ROLES, action="run audit commands")
    return actor
