"""Users of a database and their roles."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mspflow import inputs
from mspflow.auth import SCHEDULER, check_role
from mspflow.errors import InvalidInput
from mspflow.services.readmodels import UserView
from mspflow.store import models as m

if TYPE_CHECKING:
    from mspflow.services.context import Context

__all__ = ["Users", "add_first_user"]


def _checked(name: str, role: str, email: str | None) -> tuple[str, str, str | None]:
    """The name is one line (it appears in the history and in mail); the address must
    parse as one, without line breaks (it becomes a mail header)."""
    check_role(role)
    name = inputs.line(name, field="name")
    if name == SCHEDULER.name:
        raise InvalidInput(
            f"{inputs.shown(name)} cannot be a user name",
            hint="it names mspflow's scheduler; choose another",
            field="name",
        )
    if email is not None:
        email = inputs.email(email, field="email")  # given empty: refused, like any value
    return name, role, email


def _exists(name: str) -> InvalidInput:
    return InvalidInput(
        f"user name {inputs.shown(name)} exists already", hint="choose another", field="name"
    )


def _insert(s: Session, name: str, role: str, email: str | None, now: datetime) -> None:
    s.add(m.User(name=name, role=role, email=email, created_at=now))
    try:
        s.flush()
    except IntegrityError:  # added meanwhile by another writer (PostgreSQL)
        raise _exists(name) from None


def add_first_user(engine: Engine, now: datetime, name: str, email: str | None) -> bool:
    """The first secretariat member of a new database; False if they exist already
    (``init`` run twice). A database with other users refuses."""
    from mspflow.store import write_session

    name, role, email = _checked(name, "secretariat", email)
    with write_session(engine) as s:
        if s.exec(select(m.User).where(m.User.name == name)).first() is not None:
            return False
        if s.exec(select(m.User.id)).first() is not None:
            raise InvalidInput(
                "this database has users already",
                hint="a secretariat member adds more users",
            )
        _insert(s, name, role, email, now)
    return True


class Users:
    """Adding and listing users."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def add(
        self, *, name: str, role: str, email: str | None = None, session: Session | None = None
    ) -> UserView:
        """Add a user (the secretariat's to do)."""
        name, role, email = _checked(name, role, email)
        self.ctx.policy.require_role("secretariat", action="add users")
        with self.ctx.writing(session=session) as s:
            if s.exec(select(m.User).where(m.User.name == name)).first() is not None:
                raise _exists(name)
            _insert(s, name, role, email, self.ctx.now())
        return UserView(name, role, email)

    def list(self, *, session: Session | None = None) -> builtins.list[UserView]:
        """Users of this database; a partner user sees only themselves."""
        with self.ctx.reading(session) as s:
            query = select(m.User).order_by(col(m.User.id))
            if self.ctx.actor.role == "partner":
                query = query.where(m.User.name == self.ctx.actor.name)
            return [UserView(u.name, u.role, u.email) for u in s.exec(query)]
