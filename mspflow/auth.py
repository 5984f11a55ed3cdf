"""Who is acting, and what their role lets them do."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlmodel import Session, select

from mspflow.errors import InvalidInput, NotPermitted
from mspflow.store.models import User

__all__ = ["ROLES", "SCHEDULER", "Actor", "find_actor", "require_role"]

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
    if not name:
        raise NotPermitted(
            "no actor given", hint="pass --as NAME or set MSPFLOW_ACTOR to a user of this database"
        )
    if name == SCHEDULER.name:
        raise NotPermitted("'scheduler' is reserved for the scheduler daemon")
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotPermitted(
            f"'{name}' is not a user of this database",
            hint="a secretariat member adds users with 'mspflow user add NAME --role ROLE'",
        )
    return Actor(user.name, user.role)


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
