"""Users of a database and their roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from mspflow.auth import Actor, check_role, require_role
from mspflow.clock import Clock
from mspflow.errors import InvalidInput
from mspflow.store import read_session, write_session
from mspflow.store.models import User

__all__ = ["add_user", "list_users"]


def add_user(
    engine: Engine,
    clock: Clock,
    actor: Actor | None,
    name: str,
    role: str,
    email: str | None,
    *,
    first: bool = False,
) -> bool:
    """Add a user; ``first`` creates the first secretariat member of a new database.

    Returns False when ``first`` and the user already exists (``init`` run twice).
    """
    check_role(role)
    if not name.strip() or name == "scheduler":
        raise InvalidInput(f"'{name}' cannot be a user name")
    with write_session(engine) as s:
        existing = s.exec(select(User).where(User.name == name)).first()
        if first:
            if existing is not None:
                return False
            if s.exec(select(User.id)).first() is not None:
                raise InvalidInput(
                    "this database has users already",
                    hint="add more with 'mspflow user add' as a secretariat member",
                )
        else:
            assert actor is not None
            require_role(actor, "secretariat", action="add users")
            if existing is not None:
                raise InvalidInput(f"user '{name}' exists already")
        s.add(User(name=name, role=role, email=email, created_at=clock.now()))
    return True


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with read_session(engine) as s:
        return [
            {"name": u.name, "role": u.role, "email": u.email}
            for u in s.exec(select(User).order_by(col(User.id)))
        ]
