"""Who is acting: the users of a database, their roles, and the scheduler.

What each role may do is decided by the access policy (:mod:`mspflow.services.policy`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mspflow.errors import InvalidInput, NotFound, NotPermitted

if TYPE_CHECKING:
    from sqlmodel import Session

__all__ = ["ROLES", "SCHEDULER", "Actor", "actor_name", "check_role", "find_actor"]

#: secretariat: changes state and records evidence; partner: reads its
#: partnership; auditor: reads everything, changes nothing.
ROLES = ("secretariat", "partner", "auditor")


@dataclass(frozen=True)
class Actor:
    name: str
    role: str


#: The scheduler daemon acts in its own name when a review falls due.
SCHEDULER = Actor("scheduler", "system")


def actor_name(given: str | None) -> str | None:
    return given or os.environ.get("MSPFLOW_ACTOR") or None


def find_actor(session: Session, name: str | None) -> Actor:
    """The user ``name`` of this database: NotPermitted when no one is named, NotFound
    when the name is unknown.

    Reads only the name and role columns, which every schema revision has, so
    that ``db upgrade`` can check the user on a database it has not upgraded yet.
    """
    from sqlmodel import select

    from mspflow.inputs import shown
    from mspflow.store.models import User

    if not name:
        raise NotPermitted(
            "no actor given", hint="name a user of this database to act as", field="actor"
        )
    if name == SCHEDULER.name:
        raise NotPermitted("'scheduler' is reserved for the scheduler daemon", field="actor")
    found = None
    if "\x00" not in name:  # no user name holds one; PostgreSQL would refuse the query
        found = session.exec(select(User.name, User.role).where(User.name == name)).first()
    if found is None:
        raise NotFound(
            f"{shown(name)} is not a user of this database",
            hint="check the name; a secretariat member adds users",
            field="actor",
        )
    return Actor(found[0], found[1])


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}", hint=f"use one of: {', '.join(ROLES)}", field="role"
        )
    return role
