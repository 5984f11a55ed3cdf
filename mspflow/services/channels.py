"""Chat and webhook destinations of notifications (Apprise URLs).

A destination belongs to one partnership (it hears what that partnership's partners
hear) or to the whole portfolio (it hears everything, escalations included). The
sweep writes one outbox row per message and destination, and delivers it with the
outbox's rules: exactly once, retried with backoff while the service fails. The
URL may carry a token, so it is never shown back: lists give the service and host.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlmodel import col, select

from mspflow import inputs
from mspflow.errors import DeliveryError, InvalidInput, NotFound
from mspflow.services.context import Context
from mspflow.services.readmodels import ReadModel
from mspflow.store import models as m
from mspflow.store.lookup import find

__all__ = ["ChannelView", "Channels"]

#: The longest URL kept (webhook URLs with tokens run to a few hundred characters).
URL_MAX = 2_000


@dataclass(frozen=True)
class ChannelView(ReadModel):
    id: int
    label: str
    partnership: str | None  # None: the whole portfolio
    service: str  # "json://127.0.0.1:8080": the scheme and host, never the token
    active: bool
    added_by: str


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


class Channels:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def add(self, *, url: str, label: str, partnership: str | None = None) -> ChannelView:
        """A destination for ``partnership``'s notifications (None: the portfolio's)."""
        from mspflow.scheduler.notify import apprise_url_error

        self.ctx.policy.require_role("secretariat", action="configure notifications")
        label = inputs.line(label, field="label")
        url = inputs.line(url, field="url", limit=URL_MAX)
        why = apprise_url_error(url)
        if why is not None:
            raise InvalidInput(
                f"{inputs.shown(_where(url) or url, 80)} is {why}",
                hint="e.g. json://host/path for a webhook; see Apprise's list of services",
                field="url",
            )
        with self.ctx.writing() as s:
            p = None
            if partnership is not None:
                p = find(s, partnership)
                self.ctx.policy.check_change(s, p, action="configure notifications")
            taken = s.exec(select(m.ChatChannel).where(m.ChatChannel.label == label)).first()
            if taken is not None:
                raise InvalidInput(
                    f"there is already a channel {inputs.shown(label)}",
                    hint="give this one another label",
                    field="label",
                )
            row = m.ChatChannel(
                partnership_id=p.id if p else None,
                label=label,
                url=url,
                added_by=self.ctx.actor.name,
                added_at=self.ctx.now(),
            )
            s.add(row)
            s.flush()
            return self._view(row, p.slug if p else None)

    def list(self, *, partnership: str | None = None) -> list[ChannelView]:
        """The portfolio's destinations and those of partnerships (of ``partnership``
        only, when named) the actor may read."""
        with self.ctx.reading() as s:
            query = select(m.ChatChannel, m.Partnership.slug).outerjoin(
                m.Partnership, col(m.Partnership.id) == m.ChatChannel.partnership_id
            )
            if partnership is not None:
                p = find(s, partnership)
                self.ctx.policy.check_read(s, p)
                query = query.where(m.ChatChannel.partnership_id == p.id)
            visible = self.ctx.policy.visible(s)
            rows = s.exec(query.order_by(col(m.ChatChannel.id))).all()
            return [
                self._view(row, slug)
                for row, slug in rows
                if visible is None or row.partnership_id in visible
            ]

    def test(self, *, channel: str) -> ChannelView:
        """Post a test message to ``channel`` (its label or id) now, outside the outbox."""
        from mspflow.scheduler.notify import post

        self.ctx.policy.require_role("secretariat", action="test notifications")
        name = inputs.line(channel, field="channel")
        with self.ctx.reading() as s:
            row = s.exec(select(m.ChatChannel).where(m.ChatChannel.label == name)).first()
            if row is None and name.isdigit() and int(name) <= inputs.INT_MAX:
                row = s.get(m.ChatChannel, int(name))
            if row is None:
                raise NotFound(f"no channel {inputs.shown(name)}", field="channel")
            p = s.get(m.Partnership, row.partnership_id) if row.partnership_id else None
            view = self._view(row, p.slug if p else None)
        error = post(row.url, "[mspflow] test message", f"A test of the channel {row.label}.\n")
        if error is not None:
            raise DeliveryError(f"channel {row.label} ({view.service}): {error}")
        return view

    @staticmethod
    def _view(row: m.ChatChannel, slug: str | None) -> ChannelView:
        return ChannelView(row.id or 0, row.label, slug, _where(row.url), row.active, row.added_by)
