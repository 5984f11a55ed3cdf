"""Who may read and change which partnership: the one access policy.

- **secretariat** users read and change everything; with the setting
  ``secretariat_scope = "assigned"`` only the partnerships they are assigned
  to (members of), and the ones they create;
- **partner** users read only the partnerships they are members of (as the
  contact of one of its partner organisations), and record there the kinds of
  evidence partners supply (minutes of meetings, monitoring, reports: the
  kinds declared ``by_partners``);
- **auditor** users read everything and change nothing;
- the **scheduler** daemon acts on every partnership.

Lists, portfolio views, calendars and audit queries are filtered by the same
rules (:meth:`Policy.visible`), so a front door never filters by itself.

The setting is the deployment's, not the database's (a scoped member must not
be able to lift their own scope): ``MSPFLOW_SECRETARIAT_SCOPE`` or the
``[access]`` table of the configuration file (``secretariat_scope``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mspflow.auth import SCHEDULER, Actor
from mspflow.errors import InvalidInput, NotPermitted

if TYPE_CHECKING:
    from sqlmodel import Session

    from mspflow.services.context import Context
    from mspflow.store import models as m

__all__ = ["SCOPES", "Policy", "partner_kinds", "secretariat_scope"]

#: ``all``: the secretariat reaches every partnership; ``assigned``: its members' only.
SCOPES = ("all", "assigned")


def secretariat_scope(env: dict[str, str] | None = None) -> str:
    """The deployment's setting: the environment, else the configuration file, else ``all``."""
    env = dict(os.environ) if env is None else env
    value = env.get("MSPFLOW_SECRETARIAT_SCOPE")
    if value is None:
        from mspflow.config import config_path, read_config

        value = read_config(config_path(env)).get("access", {}).get("secretariat_scope")
    value = (value or "all").strip()
    if value not in SCOPES:
        raise InvalidInput(
            f"secretariat scope {value!r} is not one of: {', '.join(SCOPES)}",
            hint="set it to 'all' or 'assigned'",
            field="secretariat_scope",
        )
    return value


def partner_kinds() -> tuple[str, ...]:
    """The kinds of evidence a partner user may record for their partnerships."""
    from mspflow.definition.kinds import KINDS

    return tuple(k.kind for k in KINDS.values() if k.by_partners and k.recordable)


class Policy:
    """The rules for one actor on one database."""

    def __init__(self, ctx: Context, actor: Actor, scope: str = "all") -> None:
        if scope not in SCOPES:
            raise InvalidInput(f"secretariat scope {scope!r} is not one of: {', '.join(SCOPES)}")
        self.ctx = ctx
        self.actor = actor
        self.scope = scope
        self._mine: frozenset[int] | None = None

    # -- who ---------------------------------------------------------------------
    @property
    def sees_everything(self) -> bool:
        """Whether every partnership is visible (no filter needed)."""
        role = self.actor.role
        return (
            self.actor == SCHEDULER
            or role == "auditor"
            or (role == "secretariat" and self.scope == "all")
        )

    def require_role(self, *roles: str, action: str) -> None:
        """Refuse unless the actor has one of ``roles`` (the scheduler always may)."""
        if self.actor.role not in roles and self.actor != SCHEDULER:
            raise NotPermitted(
                f"{self.actor.name} ({self.actor.role}) may not {action}",
                hint=f"only {' or '.join(roles)} users may",
            )

    def memberships(self, session: Session) -> frozenset[int]:
        """The ids of the partnerships the actor is a member of (read once)."""
        if self._mine is None:
            from sqlmodel import col, select

            from mspflow.store import models as m

            rows = session.scalars(
                select(m.Membership.partnership_id)
                .join(m.User, col(m.User.id) == m.Membership.user_id)
                .where(m.User.name == self.actor.name)
            )
            self._mine = frozenset(int(pid) for pid in rows)
        return self._mine

    def joined(self, partnership_id: int) -> None:
        """The actor became a member (created a partnership while scoped)."""
        if self._mine is not None:
            self._mine = self._mine | {partnership_id}

    def visible(self, session: Session) -> frozenset[int] | None:
        """The ids of the partnerships the actor may read; None for all of them."""
        if self.sees_everything:
            return None
        return self.memberships(session)

    def _member(self, session: Session, p: m.Partnership) -> bool:
        return p.id in self.memberships(session)

    # -- reading -------------------------------------------------------------------
    def check_read(self, session: Session, p: m.Partnership) -> None:
        if self.sees_everything or self._member(session, p):
            return
        raise NotPermitted(
            f"{self.actor.name} ({self.actor.role}) may not read partnership {p.slug}: "
            "not a member",
            hint="a secretariat member can add them to the partnership",
            field="partnership",
        )

    # -- changing ------------------------------------------------------------------
    def check_change(self, session: Session, p: m.Partnership, *, action: str) -> None:
        """Changes of state, waivers, debt, partners, schedules: the secretariat's."""
        self.require_role("secretariat", action=action)
        if self.actor == SCHEDULER or self.scope == "all" or self._member(session, p):
            return
        raise NotPermitted(
            f"{self.actor.name} (secretariat) may not {action} of partnership {p.slug}: "
            "not assigned to it",
            hint="the secretariat is scoped to assigned partnerships; ask to be assigned",
            field="partnership",
        )

    def check_record(self, session: Session, p: m.Partnership, kind: str) -> None:
        """Evidence: the secretariat's, and the kinds partners supply for their own."""
        if self.actor.role == "partner" and kind in partner_kinds():
            if self._member(session, p):
                return
            raise NotPermitted(
                f"{self.actor.name} (partner) may not record evidence for partnership "
                f"{p.slug}: not a member",
                hint="a secretariat member can add them to the partnership",
                field="partnership",
            )
        if self.actor.role == "partner":
            raise NotPermitted(
                f"{self.actor.name} (partner) may not record {kind} evidence",
                hint="partners record: " + ", ".join(partner_kinds()),
                field="kind",
            )
        self.check_change(session, p, action="record evidence")
