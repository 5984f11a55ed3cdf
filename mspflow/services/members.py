"""Members of a partnership: the users who belong to it.

A partner user belongs as the contact of one of the partnership's partner
organisations; a secretariat user as an assigned member (which matters when
the secretariat is scoped to assigned partnerships, :mod:`.policy`). Auditors
read everything and are members of nothing. Adding and removing a member is
recorded in the history, so an auditor can see who was given access, when and
by whom.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from mspflow import inputs
from mspflow.errors import InvalidInput, NotFound
from mspflow.services.readmodels import Member, iso
from mspflow.store import models as m

if TYPE_CHECKING:
    from mspflow.services.context import Context
    from mspflow.services.partnerships import Partnerships

__all__ = ["Members"]


class Members:
    def __init__(self, ctx: Context, partnerships: Partnerships) -> None:
        self.ctx = ctx
        self.partnerships = partnerships

    def _user(self, s: Session, name: str) -> m.User:
        found: m.User | None = None
        if "\x00" not in name and len(name) <= inputs.NAME_MAX:
            found = s.exec(select(m.User).where(m.User.name == name)).first()
        if found is None:
            raise NotFound(
                f"{inputs.shown(name)} is not a user of this database",
                hint="add the user first",
                field="user",
            )
        return found

    def add(
        self,
        *,
        partnership: str,
        user: str,
        partner: str | None = None,
        session: Session | None = None,
    ) -> Member:
        """Make ``user`` a member: a partner user names their organisation (``partner``)."""
        if session is None:
            self.partnerships.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p, wf = self.partnerships.locked(s, partnership, action="change the members")
            u = self._user(s, user)
            if u.role == "auditor":
                raise InvalidInput(
                    f"{u.name} is an auditor; auditors read every partnership as they are",
                    field="user",
                )
            org = None
            if u.role == "partner":
                if partner is None:
                    raise InvalidInput(
                        f"{u.name} is a partner user: name the partner organisation they "
                        "are the contact of",
                        hint="give the partner's name or #id",
                        field="partner",
                    )
                org = self._partner(s, p, partner)
            elif partner is not None:
                raise InvalidInput(
                    f"{u.name} is a secretariat member, not a partner's contact",
                    hint="leave the partner out",
                    field="partner",
                )
            taken = s.exec(
                select(m.Membership.id).where(
                    m.Membership.partnership_id == p.id, m.Membership.user_id == u.id
                )
            ).first()
            if taken is not None:
                raise InvalidInput(f"{u.name} is a member of {p.slug} already", field="user")
            now = self.ctx.now()
            assert p.id is not None and u.id is not None
            s.add(
                m.Membership(
                    partnership_id=p.id,
                    user_id=u.id,
                    partner_id=org.id if org else None,
                    added_by=self.ctx.actor.name,
                    added_at=now,
                )
            )
            self.partnerships.event(
                s, p, wf, "member-add", at=now, from_state=p.state, to_state=p.state,
                data={"user": u.name, "role": u.role, "partner": org.name if org else None},
            )  # fmt: skip
            self.partnerships.touch(s, p)
            return Member(p.slug, u.name, u.role, org.name if org else None,
                          self.ctx.actor.name, iso(now) or "")  # fmt: skip

    @staticmethod
    def _partner(s: Session, p: m.Partnership, ref: str) -> m.Partner:
        ref = inputs.line(ref, field="partner")
        found: m.Partner | None = s.exec(
            select(m.Partner).where(m.Partner.partnership_id == p.id, m.Partner.name == ref)
        ).first()
        if found is None and ref.lstrip("#").isdigit() and len(ref) < 12:
            row = s.get(m.Partner, int(ref.lstrip("#")))
            found = row if row is not None and row.partnership_id == p.id else None
        if found is None:
            raise NotFound(
                f"partnership {p.slug} has no partner {inputs.shown(ref)}",
                hint="give its name or #id, as the partnership lists them",
                field="partner",
            )
        return found

    def remove(self, *, partnership: str, user: str, session: Session | None = None) -> Member:
        """End ``user``'s membership (kept in the history)."""
        if session is None:
            self.partnerships.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p, wf = self.partnerships.locked(s, partnership, action="change the members")
            u = self._user(s, user)
            row = s.exec(
                select(m.Membership).where(
                    m.Membership.partnership_id == p.id, m.Membership.user_id == u.id
                )
            ).first()
            if row is None:
                raise NotFound(f"{u.name} is not a member of {p.slug}", field="user")
            org = s.get(m.Partner, row.partner_id) if row.partner_id else None
            s.delete(row)
            now = self.ctx.now()
            self.partnerships.event(
                s, p, wf, "member-remove", at=now, from_state=p.state, to_state=p.state,
                data={"user": u.name, "role": u.role, "partner": org.name if org else None},
            )  # fmt: skip
            self.partnerships.touch(s, p)
            return Member(p.slug, u.name, u.role, org.name if org else None,
                          row.added_by, iso(row.added_at) or "")  # fmt: skip

    def list(self, *, partnership: str, session: Session | None = None) -> builtins.list[Member]:
        """The members of a partnership, in the order they were added."""
        with self.ctx.reading(session) as s:
            p = self.partnerships.row(s, partnership)
            rows = s.exec(
                select(m.Membership, m.User.name, m.User.role)
                .join(m.User, col(m.User.id) == m.Membership.user_id)
                .where(m.Membership.partnership_id == p.id)
                .order_by(col(m.Membership.id))
            ).all()
            names = {
                x.id: x.name
                for x in s.exec(select(m.Partner).where(m.Partner.partnership_id == p.id))
            }
            return [
                Member(
                    p.slug,
                    name,
                    role,
                    names.get(ms.partner_id) if ms.partner_id else None,
                    ms.added_by,
                    iso(ms.added_at) or "",
                )
                for ms, name, role in rows
            ]
