"""What is upcoming, due and overdue, per partnership and for the portfolio.

Computed from the schedules and the records themselves, so the answer is
right whether or not a sweeper has run; an overdue item says whether a sweep
has already flagged it (and escalated it to the secretariat).

The occurrences are the sweep's own (:func:`~mspflow.scheduler.times.iter_occurrences`
and :func:`~mspflow.scheduler.times.shift_days`), so status, reminders and
overdue flags agree on every instant, daylight-saving changes included. A
schedule whose occurrences cannot be computed is listed as ``failed`` with
its error instead of stopping the listing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from mspflow.definition.model import Workflow
from mspflow.scheduler.times import iter_occurrences, shift_days
from mspflow.services.readmodels import ScheduleItem, iso
from mspflow.services.sweep import (
    RECORDS,
    as_utc,
    error_line,
    record_exists,
    record_window,
    trigger_key,
)
from mspflow.store import models as m
from mspflow.store.definitions import definition_for

__all__ = [
    "fired",
    "portfolio_counts",
    "portfolio_overdue",
    "schedule_items",
    "schedules",
]

#: How far back an overdue item is still listed.
LOOK_BACK = timedelta(days=400)


def _iso(instant: datetime) -> str:
    return iso(instant) or ""


def schedules(s: Session, p: m.Partnership, *, active_only: bool = True) -> list[m.Schedule]:
    query = select(m.Schedule).where(m.Schedule.partnership_id == p.id)
    if active_only:
        query = query.where(col(m.Schedule.active).is_(True))
    return list(s.exec(query.order_by(col(m.Schedule.id))))


def schedule_items(
    s: Session, p: m.Partnership, now: datetime, *, days: int = 30
) -> list[ScheduleItem]:
    """Upcoming occurrences within ``days``; due ones awaiting their record
    (within the grace period); overdue ones whose grace period ended."""
    wf: Workflow = definition_for(s, p)
    if wf.is_final(p.state):
        return []
    flagged = {
        key
        for (key,) in s.execute(
            select(m.FiredTrigger.key).where(
                m.FiredTrigger.partnership_id == p.id, m.FiredTrigger.purpose == "overdue"
            )
        )
    }
    items: list[ScheduleItem] = []
    for sched in schedules(s, p):
        kind = wf.schedule_kind(sched.kind)
        if kind is None:
            continue
        try:
            items.extend(_items(s, p, sched, kind, now, days, flagged))
        except Exception as exc:  # one stored row that cannot be computed, not the listing
            items.append(
                ScheduleItem(
                    p.slug, sched.kind, sched.id or 0, kind.task, now, "failed", None, None,
                    error=error_line(exc),
                )
            )  # fmt: skip
    order = {"failed": 0, "overdue": 1, "due": 2, "upcoming": 3}
    return sorted(items, key=lambda i: (order[i.status], i.occurrence))


def _items(
    s: Session,
    p: m.Partnership,
    sched: m.Schedule,
    kind: Any,
    now: datetime,
    days: int,
    flagged: set[str],
) -> list[ScheduleItem]:
    items: list[ScheduleItem] = []
    expects = kind.record if kind.record in RECORDS else None
    since = max(as_utc(sched.recorded_at) - timedelta(days=sched.grace_days), now - LOOK_BACK)
    for o in iter_occurrences(
        sched.cadence,
        sched.starts_on,
        sched.local_time,
        sched.timezone,
        after=since,
        until=now + timedelta(days=days),
    ):
        if o > now:
            items.append(
                ScheduleItem(
                    p.slug, sched.kind, sched.id or 0, kind.task, o, "upcoming", expects, None
                )
            )
            continue
        if expects is None:
            continue
        if o < as_utc(sched.recorded_at):
            continue  # before the schedule was agreed
        deadline = shift_days(o, sched.grace_days, sched.timezone)
        first, last = record_window(sched, o)
        if record_exists(s, sched, first, last):
            continue
        status = "overdue" if deadline <= now else "due"
        key = trigger_key(sched.id, "overdue", o)
        items.append(
            ScheduleItem(
                p.slug,
                sched.kind,
                sched.id or 0,
                kind.task,
                o,
                status,
                expects,
                deadline,
                key in flagged,
            )
        )
    return items


def _only(query: Any, visible: frozenset[int] | None) -> Any:
    """``query`` limited to the partnerships an actor may see (None: all of them)."""
    if visible is None:
        return query
    return query.where(col(m.Partnership.id).in_(sorted(visible)))


def portfolio_counts(s: Session, visible: frozenset[int] | None = None) -> dict[str, Any]:
    """Partnerships per state and open overdue flags per partnership (two queries)."""
    by_state = dict(
        s.execute(
            _only(select(m.Partnership.state, func.count()), visible).group_by(
                col(m.Partnership.state)
            )
        ).all()
    )
    overdue = dict(
        s.execute(
            _only(
                select(m.Partnership.slug, func.count())
                .join(m.FiredTrigger, col(m.FiredTrigger.partnership_id) == m.Partnership.id)
                .where(
                    m.FiredTrigger.purpose == "overdue",
                    col(m.FiredTrigger.resolved_at).is_(None),
                ),
                visible,
            ).group_by(col(m.Partnership.slug))
        ).all()
    )
    return {"by_state": by_state, "overdue_flags": overdue}


def portfolio_overdue(s: Session, visible: frozenset[int] | None = None) -> list[ScheduleItem]:
    """Every open overdue flag of the portfolio, oldest first: one indexed query.

    A flag is raised by a sweep when a grace period ends without the record and
    closed when the record arrives, so this is what is overdue as of the last
    sweep (run ``mspflow remind due`` first for up to the minute).
    """
    query = (
        select(  # type: ignore[call-overload]
            m.Partnership.slug,
            m.FiredTrigger.schedule_id,
            m.FiredTrigger.occurrence,
            m.FiredTrigger.due_at,
            m.FiredTrigger.detail,
        )
        .join(m.Partnership, col(m.Partnership.id) == m.FiredTrigger.partnership_id)
        .where(m.FiredTrigger.purpose == "overdue", col(m.FiredTrigger.resolved_at).is_(None))
    )
    rows = s.execute(
        _only(query, visible).order_by(col(m.FiredTrigger.occurrence), col(m.FiredTrigger.id))
    ).all()
    items = []
    for slug, schedule_id, occurrence, due_at, detail in rows:
        d = json.loads(detail)
        items.append(
            ScheduleItem(
                slug,
                str(d.get("schedule", "")),
                schedule_id or 0,
                str(d.get("task", "")),
                as_utc(occurrence),
                "overdue",
                d.get("record"),
                as_utc(due_at),
                True,
            )
        )
    return items


def fired(
    s: Session,
    p: m.Partnership | None,
    *,
    purpose: str | None = None,
    limit: int = 100,
    visible: frozenset[int] | None = None,
) -> list[dict[str, Any]]:
    """The record of fired triggers, newest first."""
    query = _only(
        select(m.FiredTrigger, m.Partnership.slug).join(
            m.Partnership, col(m.Partnership.id) == m.FiredTrigger.partnership_id
        ),
        visible,
    )
    if p is not None:
        query = query.where(m.FiredTrigger.partnership_id == p.id)
    if purpose:
        query = query.where(m.FiredTrigger.purpose == purpose)
    rows = s.execute(query.order_by(col(m.FiredTrigger.id).desc()).limit(limit)).all()
    out = []
    for t, slug in rows:
        detail = json.loads(t.detail)
        out.append(
            {
                "id": t.id,
                "partnership": slug,
                "purpose": t.purpose,
                "outcome": t.outcome,
                "occurrence": _iso(t.occurrence),
                "due_at": _iso(t.due_at),
                "fired_at": _iso(t.fired_at),
                "late": t.late,
                "resolved_at": _iso(t.resolved_at) if t.resolved_at else None,
                "detail": detail,
                # Why a schedule or a notification failed (purposes schedule-failed
                # and delivery-failed); None for the rest.
                "error": detail.get("error") if isinstance(detail, dict) else None,
            }
        )
    return out
