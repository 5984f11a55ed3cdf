"""Users of a database and their roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from mspflow import inputs
from mspflow.auth import SCHEDULER, Actor, check_role, require_role
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
    The name is one line (it appears in the history and in mail); the address
    must parse as one, without line breaks (it becomes a mail header).
    """
    check_role(role)
    name = inputs.line(name, field="name")
    if name == SCHEDULER.name:
        raise InvalidInput(
            f"{inputs.shown(name)} cannot be a user name",
            hint="it names mspflow's scheduler; choose another",
            field="name",
        )
    if email is not None:
        email = inputs.email(email, field="email")  # given empty: refused, like any option
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
                raise _exists(name)
        s.add(User(name=name, role=role, email=email, created_at=clock.now()))
        try:
            s.flush()
        except IntegrityError:  # added meanwhile by another writer (PostgreSQL)
            raise _exists(name) from None
    return True


def _exists(name: str) -> InvalidInput:
    return InvalidInput(
        f"user name {inputs.shown(name)} exists already", hint="choose another", field="name"
    )


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with read_session(engine) as s:
        return [
            {"name": u.name, "role": u.role, "email": u.email}
            for u in s.exec(select(User).order_by(col(User.id)))
        ]
