"""Schedules: agree a cadence, list them, what is due, what fired, the outbox, calendars.

A schedule is partnership data, recorded like evidence (task 7.1 agrees
coordination meetings, 8.1 monitoring, 9.1 reviews); the sweep
(:mod:`.sweep`) fires what falls due. Everything here reads, except ``add``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from mspflow import inputs
from mspflow.errors import InvalidInput
from mspflow.services.readmodels import (
    FiredView,
    NotificationView,
    RecordResult,
    ScheduleStatus,
    ScheduleView,
    iso,
)
from mspflow.store import models as m
from mspflow.store.lookup import find

if TYPE_CHECKING:
    from mspflow.services.context import Context
    from mspflow.services.evidence import Evidence
    from mspflow.services.partnerships import Partnerships

__all__ = ["PURPOSES", "Schedules"]

#: What a fired trigger was for (``schedule fired --purpose``).
PURPOSES = (
    "reminder", "overdue", "review-due", "time-frame-end", "schedule-failed", "delivery-failed",
)  # fmt: skip


class Schedules:
    """The agreed cadences of partnerships, for one actor."""

    def __init__(self, ctx: Context, partnerships: Partnerships, evidence: Evidence) -> None:
        self.ctx = ctx
        self.partnerships = partnerships
        self.evidence = evidence

    def add(
        self,
        *,
        partnership: str,
        kind: str,
        cadence: str | None = None,
        start: str | date | None = None,
        at: str | None = None,
        timezone: str | None = None,
        lead_days: str | Sequence[int] | None = None,
        grace_days: int | str | None = None,
        session: Session | None = None,
    ) -> RecordResult:
        """Agree a cadence; a new schedule of a kind replaces the one before (kept, inactive)."""
        if lead_days is not None and not isinstance(lead_days, str):
            lead_days = ",".join(str(d) for d in lead_days)
        values = {
            "kind": kind, "cadence": cadence, "start": start, "at": at, "timezone": timezone,
            "lead_days": lead_days, "grace_days": grace_days,
        }  # fmt: skip
        return self.evidence.record(
            partnership=partnership,
            kind="schedule",
            values={k: v for k, v in values.items() if v is not None},
            session=session,
        )

    def list(
        self, *, partnership: str, include_replaced: bool = False, session: Session | None = None
    ) -> builtins.list[ScheduleView]:
        """Cadence, local time and zone, reminders, grace and the next occurrence of each."""
        from mspflow.scheduler.times import lead_days, occurrences
        from mspflow.services.status import schedules
        from mspflow.services.sweep import error_line

        now = self.ctx.now()
        with self.ctx.reading(session) as s:
            p = self.partnerships.row(s, partnership)
            rows = schedules(s, p, active_only=not include_replaced)
        out = []
        for r in rows:
            error = None
            try:
                upcoming = occurrences(r, after=now, until=now + timedelta(days=400))
            except Exception as exc:  # a stored row that cannot be computed: say so, go on
                upcoming, error = [], error_line(exc)
            out.append(
                ScheduleView(
                    id=r.id or 0,
                    kind=r.kind,
                    cadence=r.cadence,
                    starts_on=str(r.starts_on),
                    local_time=r.local_time,
                    timezone=r.timezone,
                    lead_days=lead_days(r.lead_days),
                    grace_days=r.grace_days,
                    active=r.active,
                    next=iso(upcoming[0]) if upcoming else None,
                    recorded_by=r.recorded_by,
                    error=error,
                )
            )
        return out

    def status(
        self, *, partnership: str | None = None, days: int = 30, session: Session | None = None
    ) -> ScheduleStatus:
        """What is overdue, due (awaiting its record) and upcoming for one partnership.

        Without one: the portfolio the actor may see, its partnerships per step
        and every open overdue flag (as of the last sweep), in a constant number
        of queries however many partnerships there are.
        """
        from mspflow.services.status import portfolio_counts, portfolio_overdue, schedule_items

        days = inputs.whole(days, field="days", low=0, high=inputs.MAX_DAYS)
        now = self.ctx.now()
        with self.ctx.reading(session) as s:
            if partnership is not None:
                items = schedule_items(s, self.partnerships.row(s, partnership), now, days=days)
                counts = None
            else:
                visible = self.ctx.policy.visible(s)
                items = portfolio_overdue(s, visible)
                counts = portfolio_counts(s, visible)
        return ScheduleStatus(
            now=now,
            items=items,
            counts={
                status: sum(1 for i in items if i.status == status)
                for status in ("overdue", "due", "upcoming")
            },
            portfolio=counts,
            days=days,
        )

    def fired(
        self,
        *,
        partnership: str | None = None,
        purpose: str | None = None,
        limit: int = 50,
        session: Session | None = None,
    ) -> builtins.list[FiredView]:
        """Triggers the scheduler fired, newest first, with the failures it recorded."""
        from mspflow.services.status import fired

        if purpose is not None and purpose not in PURPOSES:
            raise InvalidInput(
                f"unknown purpose {inputs.shown(purpose)}",
                hint="one of: " + ", ".join(PURPOSES),
                field="purpose",
            )
        limit = inputs.whole(limit, field="limit", low=0)
        with self.ctx.reading(session) as s:
            p = self.partnerships.row(s, partnership) if partnership else None
            visible = None if p is not None else self.ctx.policy.visible(s)
            rows = fired(s, p, purpose=purpose, limit=limit, visible=visible)
        return [FiredView(**r) for r in rows]

    def outbox(
        self, *, include_sent: bool = False, limit: int = 50, session: Session | None = None
    ) -> builtins.list[NotificationView]:
        """Notifications waiting to be delivered (or retried), oldest first."""
        limit = inputs.whole(limit, field="limit", low=0)
        with self.ctx.reading(session) as s:
            query = select(m.Notification)
            if not include_sent:
                query = query.where(m.Notification.status != "sent")
            visible = self.ctx.policy.visible(s)
            if visible is not None:
                query = query.where(col(m.Notification.partnership_id).in_(sorted(visible)))
            rows = list(s.exec(query.order_by(col(m.Notification.id)).limit(limit)))
        return [
            NotificationView(
                id=n.id or 0,
                channel=n.channel,
                recipient=n.recipient,
                subject=n.subject,
                status=n.status,
                attempts=n.attempts,
                next_attempt_at=iso(n.next_attempt_at) or "",
                last_error=n.last_error,
                sent_at=iso(n.sent_at),
            )
            for n in rows
        ]

    def calendar(self, *, partnership: str | None = None, session: Session | None = None) -> Any:
        """An RFC 5545 calendar (``icalendar.Calendar``) of one partnership's schedules,
        or of the portfolio the actor may see."""
        from mspflow.scheduler.calendar import build_calendar

        with self.ctx.reading(session) as s:
            if partnership:
                targets = [self.partnerships.row(s, partnership)]
                name = targets[0].name
            else:
                query = select(m.Partnership).order_by(col(m.Partnership.slug))
                visible = self.ctx.policy.visible(s)
                if visible is not None:
                    query = query.where(col(m.Partnership.id).in_(sorted(visible)))
                targets = list(s.exec(query))
                name = "mspflow portfolio"
            return build_calendar(s, targets, self.ctx.now(), name=name)

    def occurrences(
        self, *, partnership: str, kind: str, after: Any, until: Any
    ) -> builtins.list[Any]:
        """The occurrences of a partnership's active schedule of ``kind`` in a period."""
        from mspflow.scheduler.times import occurrences

        with self.ctx.reading() as s:
            p = find(s, partnership)
            self.ctx.policy.check_read(s, p)
            row = s.exec(
                select(m.Schedule).where(
                    m.Schedule.partnership_id == p.id,
                    m.Schedule.kind == kind,
                    col(m.Schedule.active).is_(True),
                )
            ).first()
        return [] if row is None else list(occurrences(row, after=after, until=until))
