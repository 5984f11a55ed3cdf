"""Who is acting, and what their role lets them do."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlmodel import Session, select

from mspflow.errors import InvalidInput, NotFound, NotPermitted
from mspflow.store.models import User

__all__ = ["ROLES", "SCHEDULER", "Actor", "actor_name", "find_actor", "require_role"]

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
    """The user ``name`` of this database: exit 6 when no one is named, 4 when unknown.

    Reads only the name and role columns, which every schema revision has, so
    that ``db upgrade`` can check the user on a database it has not upgraded yet.
    """
    from mspflow.inputs import shown

    if not name:
        raise NotPermitted(
            "no actor given", hint="pass --as NAME or set MSPFLOW_ACTOR to a user of this database"
        )
    if name == SCHEDULER.name:
        raise NotPermitted("'scheduler' is reserved for the scheduler daemon")
    found = None
    if "\x00" not in name:  # no user name holds one; PostgreSQL would refuse the query
        found = session.exec(select(User.name, User.role).where(User.name == name)).first()
    if found is None:
        raise NotFound(
            f"{shown(name)} is not a user of this database",
            hint="check --as / MSPFLOW_ACTOR; a secretariat member adds users with "
            "'mspflow user add NAME --role ROLE'",
            field="actor",
        )
    return Actor(found[0], found[1])


def require_role(actor: Actor, *roles: str, action: str) -> None:
    if actor.role not in roles and actor != SCHEDULER:
        raise NotPermitted(
            f"{actor.name} ({actor.role}) may not {action}",
            hint=f"only {' or '.join(roles)} users may",
        )


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role '{role}'", hint=f"use one of: {', '.join(ROLES)}")
    return role
