"""The sweep: fire what has fallen due, exactly once, then deliver the outbox.

One sweep, at the clock's ``now``, has three phases:

1. **Claim.** For every active schedule of every open partnership, work out
   the triggers that fell due since the last sweep (reminders ahead of each
   occurrence, an overdue flag when the expected record did not arrive within
   the grace period, a due review, the end of the time frame). Each trigger is
   inserted into ``fired_trigger`` under a unique key, together with its
   notifications, in one transaction; a key that is already there was handled
   by another sweep and is skipped. A due review moves the partnership through
   the engine in the same transaction that records the trigger.
2. **Resolve.** Overdue flags whose record has since been logged are closed.
3. **Deliver.** Pending notifications are leased (``FOR UPDATE SKIP LOCKED``
   on PostgreSQL; the write lock on SQLite), handed to their channel, and
   marked sent, or put back with a later attempt time (backoff). A sweeper
   that dies while holding a lease loses it after ``lease``; the notification
   is then sent by the next sweep. Nothing is ever dropped.

Downtime policy (when no sweep ran for a while):

* of the reminders for one occurrence that fell due meanwhile, only the
  nearest is sent, marked late; the others are recorded as skipped. Reminders
  for an occurrence that has already passed are recorded as skipped, not sent;
* every missed overdue flag is still raised; when one schedule has several,
  one escalation lists them all;
* of several due reviews of one partnership, only the latest moves it; the
  earlier ones are recorded as skipped;
* a trigger handled more than ``late_after`` after it fell due is marked late.

Isolation: a schedule whose occurrences cannot be computed (dates outside the
calendar, say, in a row stored before input was validated), a partnership
whose definition cannot be read, or a notification that can never be sent is
recorded with its error (purpose ``schedule-failed`` in the fired triggers,
status ``failed`` in the outbox), escalated to the secretariat once per
distinct error, and the sweep goes on with everything else.

Leases: a notification is leased to one sender (its ``sweeper`` column holds
that sender's token) until ``lease_until``, judged by the database's clock
(PostgreSQL ``clock_timestamp()``; on SQLite the real wall clock of the host),
never by the sweep's own, possibly simulated, ``now``. The sender renews the
lease right before it hands each message over and stops at the first one it no
longer holds; it marks each message sent right after the channel accepted it.
A message can therefore reach a server twice only when (a) its sender died,
or lost the database, after the server accepted it and before the ``sent``
mark committed, or (b) handing it over took longer than the lease, so another
sender took it over meanwhile. Either way it is that one message, with the
same Message-ID.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, bindparam, case, func, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mspflow.auth import SCHEDULER
from mspflow.clock import Clock
from mspflow.definition.kinds import by_gate_name
from mspflow.definition.model import CADENCE_DAYS, AutoTrigger, Workflow
from mspflow.errors import ConcurrentChange, InvalidInput
from mspflow.scheduler.notify import (
    Channel,
    Outgoing,
    Permanent,
    TerminalChannel,
    header_safe,
    message_id,
)
from mspflow.scheduler.times import (
    at_local,
    iter_occurrences,
    lead_days,
    local_date,
    parse_local_time,
    shift_days,
)
from mspflow.services.context import Context
from mspflow.services.partnerships import Partnerships
from mspflow.services.readmodels import iso
from mspflow.store import models as m
from mspflow.store import read_session, write_session
from mspflow.store.definitions import definition_by_hash
from mspflow.store.lookup import find

__all__ = [
    "FAILED",
    "NEVER",
    "RECORDS",
    "SweepReport",
    "Sweeper",
    "as_utc",
    "next_due",
    "record_exists",
    "to_db",
    "trigger_key",
]

#: The table, date column and label of each kind of record a schedule expects,
#: by the name definitions give it (from the kinds' ``expected``).
RECORDS: Mapping[str, tuple[type[Any], str, str]] = {
    name: (m.evidence_table(k.kind), k.expected.date_column, k.expected.label)
    for name, k in by_gate_name().items()
    if k.expected is not None
}
#: Which reviews answer which review schedule.
REVIEW_KINDS: Mapping[str, tuple[str, ...]] = {
    "review-panel": ("progress", "midterm"),
    "midterm-review": ("midterm",),
    "process-review": ("process",),
}
#: Purposes of the fired triggers that record a failure (escalated once).
FAILED = ("schedule-failed", "delivery-failed")
_BACKOFF_CAP = timedelta(hours=6)
_SCHEDULES: Any = m.Schedule.__table__  # type: ignore[attr-defined]
_NOTIFICATIONS: Any = m.Notification.__table__  # type: ignore[attr-defined]


def trigger_key(schedule_id: int | None, purpose: str, occurrence: datetime) -> str:
    """The unique key of one schedule's trigger for one occurrence: inserting it is the
    claim (``s12:overdue:2027-03-01T02:00Z``); status looks flags up by it."""
    return f"s{schedule_id}:{purpose}:{occurrence:%Y-%m-%dT%H:%MZ}"


def to_db(instant: datetime) -> datetime:
    """Instants are stored in UTC (SQLModel's column type refuses naive ones)."""
    return instant.astimezone(timezone.utc)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 ... minutes after each failed attempt, at most six hours."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), _BACKOFF_CAP)


@dataclass
class SweepReport:
    at: datetime
    fired: Counter[str] = field(default_factory=Counter)  # "purpose outcome" -> n
    late: int = 0
    moved: list[str] = field(default_factory=list)
    resolved: int = 0
    sent: int = 0
    failed: int = 0
    retry: list[str] = field(default_factory=list)  # one line per failure
    #: Schedules (or partnerships) whose triggers could not be computed or recorded.
    schedule_failures: int = 0
    #: Notifications that can never be sent (marked failed, not retried).
    undeliverable: int = 0
    #: One line per schedule or notification failure, naming the partnership.
    failures: list[str] = field(default_factory=list)
    #: Messages handed over after their lease had passed to another sender.
    lease_lost: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "fired": dict(sorted(self.fired.items())),
            "late": self.late,
            "moved": self.moved,
            "resolved": self.resolved,
            "sent": self.sent,
            "failed": self.failed,
            "errors": self.retry,
            "schedule_failures": self.schedule_failures,
            "undeliverable": self.undeliverable,
            "failures": self.failures,
            "lease_lost": self.lease_lost,
        }

    def summary(self) -> str:
        fired = ", ".join(f"{n} {k}" for k, n in sorted(self.fired.items())) or "nothing"
        return (
            f"sweep at {self.at:%Y-%m-%d %H:%M}Z: fired {fired}"
            f"{f' ({self.late} late)' if self.late else ''}; "
            f"{self.sent} sent, {self.failed} to retry"
            + (f"; moved to review: {', '.join(self.moved)}" if self.moved else "")
            + (f"; {self.resolved} overdue resolved" if self.resolved else "")
            + (f"; {self.schedule_failures} schedule(s) failed" if self.schedule_failures else "")
            + (f"; {self.undeliverable} undeliverable" if self.undeliverable else "")
        )


@dataclass
class _Due:
    key: str
    partnership_id: int
    schedule_id: int | None
    purpose: str
    occurrence: datetime
    due_at: datetime
    outcome: str  # notified | skipped | not-applicable | moved | flagged
    detail: dict[str, Any]
    audience: str = "all"  # all | secretariat
    #: For a failure: the partnership's (name, slug), which no plan may hold.
    label: tuple[str, str] | None = None

    def row(self, now: datetime, late_after: timedelta, sweeper: str) -> dict[str, Any]:
        return {
            "key": self.key,
            "partnership_id": self.partnership_id,
            "schedule_id": self.schedule_id,
            "purpose": self.purpose,
            "occurrence": to_db(self.occurrence),
            "due_at": to_db(self.due_at),
            "fired_at": to_db(now),
            "late": now - self.due_at > late_after,
            "outcome": self.outcome,
            "detail": json.dumps(self.detail, sort_keys=True, default=str),
            "sweeper": sweeper,
        }


@dataclass
class _Plan:
    """What the claim phase needs to know about one partnership."""

    id: int
    slug: str
    name: str
    state: str
    timezone: str
    wf: Workflow


@dataclass
class _Failure:
    """Something of one partnership that a sweep could not handle."""

    partnership_id: int
    schedule_id: int | None
    what: str  # "schedule 3 (coordination-meeting)", "the time frame" ...
    error: str

    @classmethod
    def of(cls, pid: int, sid: int | None, what: str, exc: BaseException) -> _Failure:
        return cls(pid, sid, what, error_line(exc))


def error_line(exc: BaseException) -> str:
    """One line for an error: its type and first line, no NUL, at most 300 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return header_safe(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, 300)


class Sweeper:
    """Sweeps due triggers of every partnership in one database."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        channels: Sequence[Channel] = (),
        name: str | None = None,
        lease: timedelta = timedelta(minutes=5),
        late_after: timedelta = timedelta(hours=1),
        batch: int = 2000,
        deliver_batch: int = 100,
    ) -> None:
        self.engine = engine
        self.clock = clock
        #: The scheduler acts in its own name: its moves need no user of the database.
        self.partnerships = Partnerships(Context(engine=engine, clock=clock, actor=SCHEDULER))
        self.channels = {c.name: c for c in channels} or {"terminal": TerminalChannel()}
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        #: Who holds a lease: the name and a token of this sweeper, so two sweepers
        #: given the same name still never take each other's leases for their own.
        self.owner = f"{self.name}#{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.late_after = late_after
        self.batch = batch
        self.deliver_batch = max(1, min(deliver_batch, batch))
        self._failures: list[_Failure] = []

    # ------------------------------------------------------------------ sweep
    def sweep(self) -> SweepReport:
        """Fire what fell due, then deliver the outbox."""
        report = self.fire()
        self.deliver(report)
        if self._record_failures(report):
            self.deliver(report)  # escalations of undeliverable messages
        return report

    def fire(self) -> SweepReport:
        """The first half of a sweep: claim what fell due (with its notifications),
        close answered overdue flags, record failures. Nothing is delivered yet."""
        report = SweepReport(self.clock.now())
        self._failures = []
        self.claim(report)
        self.resolve(report)
        self._record_failures(report)  # their escalations go out with this sweep
        return report

    # ------------------------------------------------------------------ claim
    def claim(self, report: SweepReport) -> None:
        now = report.at
        with read_session(self.engine) as s:
            state = s.get(m.SweepState, 1)
            watermark = as_utc(state.swept_until) if state else None
            plans = self._plans(s)
        reviews: dict[int, list[_Due]] = defaultdict(list)
        last_id = 0
        while True:  # schedules in pages, so memory stays flat however large the portfolio
            with read_session(self.engine) as s:
                sc = _SCHEDULES  # Core rows: read by attribute, like the ORM objects
                page = s.execute(
                    select(sc)
                    .where(
                        sc.c.active.is_(True),
                        sc.c.id > last_id,
                        or_(sc.c.next_due_at.is_(None), sc.c.next_due_at <= to_db(now)),
                    )
                    .order_by(sc.c.id)
                    .limit(self.batch)
                ).all()
                if not page:
                    break
                last_id = page[-1].id or 0
                later: list[dict[str, Any]] = []
                dues = self._dues(s, plans, watermark, now, page, reviews, later)
            for chunk in _chunks(dues, self.batch):
                self._record(chunk, plans, now, report)
            if later:  # only once their triggers are claimed: a crash before re-reads them
                with write_session(self.engine) as s:
                    s.execute(
                        update(_SCHEDULES)
                        .where(_SCHEDULES.c.id == bindparam("sid"))
                        .values(next_due_at=bindparam("next_due")),
                        later,
                    )
        with read_session(self.engine) as s:
            dues = self._time_frame_ends(s, plans, watermark, now)
            dues += self._late_milestones(s, plans, watermark, now)
        for chunk in _chunks(dues, self.batch):
            self._record(chunk, plans, now, report)
        for pid, candidates in reviews.items():
            try:
                self._review(plans[pid], candidates, now, report)
            except Exception as exc:  # isolate one partnership's review
                self._failures.append(_Failure.of(pid, candidates[-1].schedule_id, "review", exc))
        with write_session(self.engine) as s:
            # Two sweepers may both find no row: insert-or-ignore, then move forward.
            table: Any = m.SweepState.__table__  # type: ignore[attr-defined]
            s.execute(
                _dialect_insert(s)(table)
                .values(id=1, swept_until=to_db(now), sweeps=0)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            s.execute(
                update(m.SweepState)
                .where(col(m.SweepState.id) == 1)
                .values(
                    sweeps=m.SweepState.sweeps + 1,
                    swept_until=case(
                        (col(m.SweepState.swept_until) < to_db(now), to_db(now)),
                        else_=m.SweepState.swept_until,
                    ),
                )
            )

    def _plans(self, s: Session) -> dict[int, _Plan]:
        plans: dict[int, _Plan] = {}
        rows = s.execute(
            select(  # type: ignore[call-overload]
                m.Partnership.id,
                m.Partnership.slug,
                m.Partnership.name,
                m.Partnership.state,
                m.Partnership.timezone,
                m.Partnership.workflow_hash,
            )
        )
        for pid, slug, name, state, tz, content_hash in rows:
            try:
                wf = definition_by_hash(s, content_hash)
                ZoneInfo(tz)
                if not wf.is_final(state):
                    plans[pid] = _Plan(pid, slug, name, state, tz, wf)
            except Exception as exc:  # one partnership, not the sweep
                self._failures.append(_Failure.of(pid, None, "the partnership", exc))
        return plans

    def _dues(
        self,
        s: Session,
        plans: Mapping[int, _Plan],
        watermark: datetime | None,
        now: datetime,
        schedules: Sequence[Any],  # schedule rows (Core): read by attribute
        reviews: dict[int, list[_Due]],
        later: list[dict[str, Any]],
    ) -> list[_Due]:
        """What fell due for ``schedules``; due reviews are added to ``reviews``, and
        when each schedule next has something to fire to ``later``.

        A schedule whose triggers cannot be computed is recorded as a failure and
        looked at again by the next sweep; the others go on."""
        dues: list[_Due] = []
        overdue: list[tuple[_Due, Any, date, date]] = []
        for sched in schedules:
            plan = plans.get(sched.partnership_id)
            kind = plan.wf.schedule_kind(sched.kind) if plan is not None else None
            if plan is None or kind is None:  # a closed partnership: look again in a day
                later.append({"sid": sched.id, "next_due": to_db(now + timedelta(days=1))})
                continue
            try:
                mine, flags, review, next_row = self._schedule_dues(
                    plan, kind, sched, watermark, now
                )
            except Exception as exc:  # one schedule, not the sweep
                self._failures.append(
                    _Failure.of(plan.id, sched.id, f"schedule {sched.id} ({sched.kind})", exc)
                )
                continue
            dues.extend(mine)
            overdue.extend(flags)
            reviews[plan.id].extend(review)
            if not reviews[plan.id]:
                del reviews[plan.id]
            if next_row is not None:
                later.append(next_row)
        # Overdue: only where the record is still missing; one escalation per schedule.
        flagged: dict[int, list[_Due]] = defaultdict(list)
        for due, sched, first, last in overdue:
            try:
                if not record_exists(s, sched, first, last):
                    flagged[sched.id or 0].append(due)
            except Exception as exc:
                self._failures.append(
                    _Failure.of(due.partnership_id, sched.id, f"schedule {sched.id}", exc)
                )
        for items in flagged.values():
            items.sort(key=lambda item: item.occurrence)
            for earlier in items[:-1]:
                earlier.outcome = "flagged"
            items[-1].detail["missed"] = [item.detail["occurrence"] for item in items]
            dues.extend(items)
        return dues

    def _schedule_dues(
        self, plan: _Plan, kind: Any, sched: Any, watermark: datetime | None, now: datetime
    ) -> tuple[list[_Due], list[tuple[_Due, Any, date, date]], list[_Due], dict[str, Any] | None]:
        """One schedule's reminders, overdue candidates and due reviews, and when it
        next has something to fire (None while a review of it waits)."""
        dues: list[_Due] = []
        overdue: list[tuple[_Due, Any, date, date]] = []
        reviews: list[_Due] = []
        since = as_utc(sched.recorded_at)
        if watermark is not None and watermark > since:
            since = watermark
        leads = sorted(lead_days(sched.lead_days))
        ahead = max(leads, default=0)
        look_back = since - timedelta(days=sched.grace_days + 1)
        auto = _auto_trigger(plan.wf, sched.kind)
        zone = ZoneInfo(sched.timezone)
        for o in iter_occurrences(
            sched.cadence,
            sched.starts_on,
            sched.local_time,
            sched.timezone,
            after=look_back,
            until=now + timedelta(days=ahead + 1),
        ):
            when = f"{o:%Y-%m-%dT%H:%MZ}"
            base = {
                "schedule": sched.kind,
                "schedule_id": sched.id,
                "occurrence": when,
                "local": f"{o.astimezone(zone):%Y-%m-%d %H:%M} {sched.timezone}",
                "task": kind.task,
            }
            # Reminders ahead of the occurrence.
            fallen = [
                (d, at) for d in leads if since < (at := shift_days(o, -d, sched.timezone)) <= now
            ]
            for i, (d, at) in enumerate(sorted(fallen)):  # nearest first
                if o <= now:
                    outcome, why = "skipped", "the occurrence had passed"
                elif i > 0:
                    outcome, why = "skipped", f"superseded by the {fallen[0][0]}-day reminder"
                else:
                    outcome, why = "notified", ""
                dues.append(
                    _Due(
                        trigger_key(sched.id, f"reminder-{d}d", o),
                        plan.id,
                        sched.id,
                        "reminder",
                        o,
                        at,
                        outcome,
                        {**base, "lead_days": d, **({"why": why} if why else {})},
                    )
                )
            # The expected record, within the grace period.
            if kind.record in RECORDS:
                deadline = shift_days(o, sched.grace_days, sched.timezone)
                if since < deadline <= now:
                    first, last = record_window(sched, o)
                    due = _Due(
                        trigger_key(sched.id, "overdue", o),
                        plan.id,
                        sched.id,
                        "overdue",
                        o,
                        deadline,
                        "notified",
                        {
                            **base,
                            "record": kind.record,
                            "window": [str(first), str(last)],
                            "grace_days": sched.grace_days,
                        },
                        audience="secretariat",
                    )
                    overdue.append((due, sched, first, last))
            # A review that falls due moves the partnership (auto trigger).
            if auto is not None and since < o <= now:
                reviews.append(
                    _Due(
                        trigger_key(sched.id, "review-due", o),
                        plan.id,
                        sched.id,
                        "review-due",
                        o,
                        o,
                        "moved",
                        {**base, "trigger": auto.id},
                    )
                )
        if reviews:  # looked at again once the review is handled
            return dues, overdue, reviews, None
        record = kind.record in RECORDS
        upcoming = next_due(sched, leads, record, auto is not None, now)
        return dues, overdue, reviews, {"sid": sched.id, "next_due": to_db(upcoming)}

    def _time_frame_ends(
        self,
        s: Session,
        plans: Mapping[int, _Plan],
        watermark: datetime | None,
        now: datetime,
    ) -> list[_Due]:
        """The end of the time frame: the secretariat should consider step 12 (task 12.1)."""
        dues: list[_Due] = []
        for scope in s.exec(select(m.Scope).where(col(m.Scope.end_date).is_not(None))):
            plan = plans.get(scope.partnership_id)
            if plan is None or scope.end_date is None:
                continue
            try:
                at = at_local(scope.end_date, parse_local_time("09:00"), plan.timezone)
            except Exception as exc:  # one partnership, not the sweep
                self._failures.append(_Failure.of(plan.id, None, "the end of the time frame", exc))
                continue
            since = as_utc(scope.recorded_at)
            if watermark is not None and watermark > since:
                since = watermark
            if since < at <= now:
                dues.append(
                    _Due(
                        f"p{plan.id}:time-frame-end:{scope.end_date}",
                        plan.id,
                        None,
                        "time-frame-end",
                        at,
                        at,
                        "notified",
                        {"end_date": str(scope.end_date), "task": "12.1"},
                        audience="secretariat",
                    )
                )
        return dues

    def _late_milestones(
        self,
        s: Session,
        plans: Mapping[int, _Plan],
        watermark: datetime | None,
        now: datetime,
    ) -> list[_Due]:
        """Milestones past their deadline and not reached (task 8.1): one flag each, raised
        the morning after the deadline (09:00 in the partnership's time zone); a new
        deadline is flagged again when it passes too.

        Only milestones whose deadline passed since the last sweep, or that were
        recorded or changed since, are looked at; the claim's key makes each flag once.
        """
        query = select(m.Milestone).where(
            col(m.Milestone.done_on).is_(None),
            col(m.Milestone.due_on) <= (now + timedelta(days=1)).date(),
        )
        if watermark is not None:
            query = query.where(
                or_(
                    col(m.Milestone.due_on) >= (watermark - timedelta(days=2)).date(),
                    col(m.Milestone.recorded_at) >= to_db(watermark),
                )
            )
        dues: list[_Due] = []
        for row in s.exec(query.order_by(col(m.Milestone.id))):
            plan = plans.get(row.partnership_id)
            if plan is None:
                continue
            try:
                at = at_local(
                    row.due_on + timedelta(days=1), parse_local_time("09:00"), plan.timezone
                )
            except Exception as exc:  # one partnership, not the sweep
                self._failures.append(_Failure.of(plan.id, None, "a milestone", exc))
                continue
            if at <= now:
                dues.append(
                    _Due(
                        f"p{plan.id}:milestone-overdue:{row.id}:{row.due_on}",
                        plan.id,
                        None,
                        "milestone-overdue",
                        at,
                        at,
                        "notified",
                        {
                            "milestone": row.id,
                            "name": row.name,
                            "due": str(row.due_on),
                            "delay": row.delay,
                            "task": "8.1",
                        },
                        audience="secretariat",
                    )
                )
        return dues

    def _record(
        self, dues: Sequence[_Due], plans: Mapping[int, _Plan], now: datetime, report: SweepReport
    ) -> None:
        """Claim ``dues`` and write their notifications, in one transaction.

        If that fails, each is tried on its own, so one bad trigger (text a
        backend refuses, say) is recorded as a failure and the others go in."""
        try:
            counts = self._record_once(dues, plans, now)
        except Exception as exc:
            if len(dues) > 1:
                for due in dues:
                    self._record([due], plans, now, report)
                return
            due = dues[0]
            what = f"schedule {due.schedule_id}" if due.schedule_id else "the time frame"
            self._failures.append(
                _Failure.of(due.partnership_id, due.schedule_id, f"{what} ({due.purpose})", exc)
            )
            return
        report.fired.update(counts["fired"])
        report.late += counts["late"][""]

    def _record_once(
        self, dues: Sequence[_Due], plans: Mapping[int, _Plan], now: datetime
    ) -> dict[str, Counter[str]]:
        counts: dict[str, Counter[str]] = {"fired": Counter(), "late": Counter()}
        with write_session(self.engine) as s:
            claimed = _insert_new(s, [d.row(now, self.late_after, self.name) for d in dues])
            by_key = {d.key: d for d in dues}
            rows: list[dict[str, Any]] = []
            recipients = _Recipients(s, {by_key[k].partnership_id for k in claimed})
            for key, trigger_id in claimed.items():
                due = by_key[key]
                counts["fired"][f"{due.purpose} {due.outcome}"] += 1
                if now - due.due_at > self.late_after:
                    counts["late"][""] += 1
                if due.outcome == "notified":
                    if due.purpose in FAILED:
                        assert due.label is not None
                        subject, body = compose_failure(due, *due.label)
                    else:
                        plan = plans[due.partnership_id]
                        subject, body = compose(due, plan, late=now - due.due_at > self.late_after)
                    rows.extend(
                        self._notifications(due, trigger_id, subject, body, recipients, now)
                    )
            if rows:
                s.execute(insert(m.Notification), rows)
        return counts

    def _review(
        self, plan: _Plan, candidates: list[_Due], now: datetime, report: SweepReport
    ) -> None:
        """Act on the latest due review of one partnership; record the others."""
        candidates.sort(key=lambda d: d.occurrence)
        latest = candidates[-1]
        for older in candidates[:-1]:
            older.outcome = "skipped"
            older.detail["why"] = "superseded by a later review"
        if candidates[:-1]:
            self._record(candidates[:-1], {plan.id: plan}, now, report)
        auto = _auto_trigger(plan.wf, str(latest.detail["schedule"]))
        assert auto is not None
        if plan.state not in auto.sources:
            self._not_applicable(latest, plan, plan.state, now, report)
            return

        try:
            with self.partnerships.ctx.writing(plan.slug) as s:
                # The move and its claim commit together, or neither does.
                moved = self.partnerships.move(
                    partnership=plan.slug,
                    kind="review-due",
                    dest=auto.dest,
                    reason=f"{latest.detail['schedule']} due {latest.detail['local']}",
                    data={
                        "schedule": latest.detail["schedule"],
                        "schedule_id": latest.schedule_id,
                        "occurrence": latest.detail["occurrence"],
                    },
                    session=s,
                )
                latest.detail["seq"] = moved.event
                claimed = _insert_new(s, [latest.row(now, self.late_after, self.name)])
                if not claimed:  # another sweeper moved it first: undo ours
                    raise _AlreadyHandled
                recipients = _Recipients(s, {plan.id})
                subject, body = compose(latest, plan, late=now - latest.due_at > self.late_after)
                rows = self._notifications(
                    latest, claimed[latest.key], subject, body, recipients, now
                )
                if rows:
                    s.execute(insert(m.Notification), rows)
        except (_AlreadyHandled, ConcurrentChange, IntegrityError):
            return  # handled elsewhere, or changed under us: the next sweep looks again
        except InvalidInput:
            # It moved since we looked (another sweeper, or a person): look again.
            latest.detail.pop("seq", None)
            with read_session(self.engine) as s:
                state = find(s, plan.slug).state
            if state not in auto.sources:  # if it still is, the next sweep tries again
                self._not_applicable(latest, plan, state, now, report)
            return
        report.fired["review-due moved"] += 1
        report.moved.append(plan.slug)
        if now - latest.due_at > self.late_after:
            report.late += 1

    def _not_applicable(
        self, due: _Due, plan: _Plan, state: str, now: datetime, report: SweepReport
    ) -> None:
        """Record a due review that found the partnership outside steps 7 and 8.

        If another sweeper already moved it for this occurrence, its claim
        stands and this record is not written (same key).
        """
        due.outcome = "not-applicable"
        due.detail["why"] = f"the partnership was in {plan.wf.label(state)}"
        self._record([due], {plan.id: plan}, now, report)

    # ------------------------------------------------------------------ failures
    def _record_failures(self, report: SweepReport) -> bool:
        """Count, log and record this sweep's failures; escalate each new one once.

        The key holds a digest of the error, so the same error of the same
        schedule is escalated once however many sweeps meet it, and a
        different error is escalated again."""
        failures, self._failures = self._failures, []
        if not failures:
            return False
        now = report.at
        with read_session(self.engine) as s:
            ids = sorted({f.partnership_id for f in failures})
            labels: dict[int, tuple[str, str]] = {
                pid: (name, slug)
                for pid, name, slug in s.execute(
                    select(m.Partnership.id, m.Partnership.name, m.Partnership.slug).where(
                        col(m.Partnership.id).in_(ids)
                    )
                )
            }
        dues: list[_Due] = []
        for f in failures:
            name, slug = labels.get(f.partnership_id, ("?", str(f.partnership_id)))
            if f.what.startswith("notification"):
                report.undeliverable += 1
                purpose = "delivery-failed"
            else:
                report.schedule_failures += 1
                purpose = "schedule-failed"
            report.failures.append(f"partnership {header_safe(slug, 80)}: {f.what}: {f.error}")
            digest = hashlib.sha256(f"{f.what}\n{f.error}".encode()).hexdigest()[:12]
            owner = f"s{f.schedule_id}" if f.schedule_id else f"p{f.partnership_id}"
            if purpose == "delivery-failed":
                owner = f.what.replace(" ", "")  # "notification 12" -> one per notification
            dues.append(
                _Due(
                    f"{owner}:{purpose}:{digest}",
                    f.partnership_id,
                    f.schedule_id,
                    purpose,
                    now,
                    now,
                    "notified",
                    {"what": f.what, "error": f.error, "schedule_id": f.schedule_id},
                    audience="secretariat",
                    label=(name, slug),
                )
            )
        escalated = False
        for due in dues:  # what cannot be recorded is still counted, logged and exits 11
            with contextlib.suppress(Exception):
                escalated |= bool(self._record_once([due], {}, now)["fired"])
        return escalated

    # ------------------------------------------------------------------ messages
    def _notifications(
        self,
        due: _Due,
        trigger_id: int,
        subject: str,
        body: str,
        recipients: _Recipients,
        now: datetime,
    ) -> list[dict[str, Any]]:
        rows = []
        people = recipients.for_(due.partnership_id, due.audience)
        targets: list[tuple[str, str, str | None]] = [("terminal", "terminal", None)]
        if "email" in self.channels:
            targets += [("email", address, name) for address, name in people]
        if "chat" in self.channels:
            targets += [
                ("chat", str(cid), label)
                for cid, label in recipients.chats(due.partnership_id, due.audience)
            ]
        for channel, address, name in targets:
            rows.append(
                {
                    "trigger_id": trigger_id,
                    "partnership_id": due.partnership_id,
                    "channel": channel,
                    "recipient": address,
                    "recipient_name": name,
                    "subject": subject,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": to_db(now),
                    "created_at": to_db(now),
                }
            )
        return rows

    # ------------------------------------------------------------------ resolve
    def resolve(self, report: SweepReport) -> None:
        """Close overdue flags whose record was logged after all."""
        now = report.at
        with read_session(self.engine) as s:
            # Only flags of partnerships that logged a record since the flag was raised
            # can have been answered; the rest are not looked at.
            since_flag = [
                select(model.id)
                .where(
                    model.partnership_id == m.FiredTrigger.partnership_id,
                    model.recorded_at >= m.FiredTrigger.fired_at,
                )
                .exists()
                for model, _, _ in RECORDS.values()
            ]
            open_flags = s.execute(
                select(
                    m.FiredTrigger.id,
                    m.FiredTrigger.partnership_id,
                    m.FiredTrigger.schedule_id,
                    m.FiredTrigger.detail,
                ).where(
                    m.FiredTrigger.purpose == "overdue",
                    col(m.FiredTrigger.resolved_at).is_(None),
                    or_(*since_flag),
                )
            ).all()
            done = []
            for trigger_id, pid, schedule_id, detail in open_flags:
                try:
                    sched = s.get(m.Schedule, schedule_id)
                    first, last = (date.fromisoformat(x) for x in json.loads(detail)["window"])
                    if sched is not None and record_exists(s, sched, first, last):
                        done.append(trigger_id)
                except Exception as exc:  # one flag, not the sweep
                    self._failures.append(
                        _Failure.of(pid, schedule_id, f"schedule {schedule_id} (overdue)", exc)
                    )
            # A late milestone's flag closes once the milestone is reached.
            flags = {
                trigger_id: json.loads(detail).get("milestone")
                for trigger_id, detail in s.execute(
                    select(m.FiredTrigger.id, m.FiredTrigger.detail).where(
                        m.FiredTrigger.purpose == "milestone-overdue",
                        col(m.FiredTrigger.resolved_at).is_(None),
                    )
                )
            }
            reached = (
                set(
                    s.exec(
                        select(m.Milestone.id).where(
                            col(m.Milestone.id).in_(sorted({x for x in flags.values() if x})),
                            col(m.Milestone.done_on).is_not(None),
                        )
                    )
                )
                if flags
                else set()
            )
            done += [t for t, milestone in flags.items() if milestone in reached]
        if done:
            with write_session(self.engine) as s:
                s.execute(
                    update(m.FiredTrigger)
                    .where(col(m.FiredTrigger.id).in_(done))
                    .values(resolved_at=to_db(now))
                )
            report.resolved += len(done)

    # ------------------------------------------------------------------ deliver
    def deliver(self, report: SweepReport) -> None:
        for _ in range(10_000):  # bounded: each round leases distinct notifications
            leased = self._lease(report.at)
            if not leased:
                return
            self._deliver_round(leased, report)

    def _deliver_round(self, leased: Sequence[Any], report: SweepReport) -> None:
        """Hand the notifications leased in one round to their channels."""
        now = report.at
        guard = _Lease(self, leased, now, report)
        by_channel: dict[str, list[Outgoing]] = defaultdict(list)
        unknown: dict[int, str | None] = {}
        for n in leased:
            nid = n.id or 0
            if n.channel in self.channels:
                by_channel[n.channel].append(
                    Outgoing(
                        nid,
                        n.recipient,
                        n.recipient_name,
                        n.subject,
                        n.body,
                        message_id(nid, str(n.trigger_id), "mspflow"),
                        now,
                    )
                )
            else:
                unknown[nid] = f"the {n.channel} channel is not configured here"
        if unknown:
            guard.done(unknown)
        for channel, batch in by_channel.items():
            try:
                self.channels[channel].send(batch, guard)
            except Exception as exc:  # a channel's bug: retry later
                error = f"{channel} channel: {error_line(exc)}"
                guard.done({n.id: error for n in batch if n.id in guard.held})

    def _db_now(self, s: Session) -> datetime:
        """The instant leases are judged by: the database server's clock on
        PostgreSQL, this host's real clock on SQLite (never the sweep's ``now``)."""
        if s.get_bind().dialect.name == "postgresql":
            return as_utc(s.execute(select(func.clock_timestamp())).scalar_one())
        return datetime.now(timezone.utc)

    def _lease(self, now: datetime) -> list[Any]:
        with read_session(self.engine) as s:  # most sweeps find nothing: no write then
            eligible = self._eligible(now, self._db_now(s))
            if s.execute(select(m.Notification.id).where(eligible).limit(1)).first() is None:
                return []
        with write_session(self.engine) as s:
            held_until = self._db_now(s)
            ids = list(
                s.execute(
                    select(m.Notification.id)
                    .where(self._eligible(now, held_until))
                    .order_by(col(m.Notification.id))
                    .limit(self.deliver_batch)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if not ids:
                return []
            s.execute(
                update(m.Notification)
                .where(col(m.Notification.id).in_(ids))
                .values(
                    status="sending",
                    lease_until=to_db(held_until + self.lease),
                    sweeper=self.owner,
                )
            )
            table = _NOTIFICATIONS  # Core rows: attribute access, no ORM identity map
            triggers: Any = m.FiredTrigger.__table__  # type: ignore[attr-defined]
            rows = s.execute(
                select(  # type: ignore[call-overload]
                    table.c.id,
                    table.c.trigger_id,
                    table.c.partnership_id,
                    table.c.channel,
                    table.c.recipient,
                    table.c.recipient_name,
                    table.c.subject,
                    table.c.body,
                    table.c.attempts,
                    triggers.c.purpose,
                )
                .join(triggers, triggers.c.id == table.c.trigger_id)
                .where(table.c.id.in_(ids))
                .order_by(table.c.id)
            ).all()
            return list(rows)

    @staticmethod
    def _eligible(now: datetime, db_now: datetime) -> Any:
        return or_(
            and_(
                col(m.Notification.status) == "pending",
                col(m.Notification.next_attempt_at) <= to_db(now),
            ),
            and_(
                col(m.Notification.status) == "sending",
                col(m.Notification.lease_until) < to_db(db_now),
            ),
        )


class _Lease:
    """One sender's hold on the notifications of one delivery round (a Guard).

    :meth:`begin` renews the lease of the messages about to go, in one
    conditional UPDATE, and answers with those still held by this sender;
    :meth:`done` records outcomes at once, only where the lease is still ours.
    """

    def __init__(self, sweeper: Sweeper, leased: Sequence[Any], now: datetime, r: SweepReport):
        self.sweeper = sweeper
        self.rows = {n.id: n for n in leased}
        self.held: set[int] = set(self.rows)
        self.now = now
        self.report = r

    def _mine(self, ids: Iterable[int]) -> Any:
        return and_(
            col(m.Notification.id).in_(list(ids)),
            col(m.Notification.sweeper) == self.sweeper.owner,
            col(m.Notification.status) == "sending",
        )

    def begin(self, batch: Sequence[Outgoing]) -> list[Outgoing]:
        ids = [n.id for n in batch if n.id in self.held]
        if not ids:
            return []
        with write_session(self.sweeper.engine) as s:
            until = to_db(self.sweeper._db_now(s) + self.sweeper.lease)
            kept = set(
                s.execute(
                    update(m.Notification)
                    .where(self._mine(ids))
                    .values(lease_until=until)
                    .returning(col(m.Notification.id))
                ).scalars()
            )
        self.held -= set(ids) - kept
        return [n for n in batch if n.id in kept]

    def done(self, results: Mapping[int, str | None]) -> None:
        results = {nid: error for nid, error in results.items() if nid in self.held}
        if not results:
            return
        now, report, sweeper = self.now, self.report, self.sweeper
        sent = [nid for nid, error in results.items() if error is None]
        with write_session(sweeper.engine) as s:
            if sent:
                marked = s.execute(  # type: ignore[attr-defined]
                    update(m.Notification)
                    .where(self._mine(sent))
                    .values(
                        status="sent",
                        sent_at=to_db(now),
                        lease_until=None,
                        attempts=m.Notification.attempts + 1,
                    )
                ).rowcount
                report.sent += marked
                report.lease_lost += len(sent) - marked
            for nid, error in results.items():
                if error is None:
                    continue
                n = self.rows[nid]
                final = isinstance(error, Permanent)
                changed = s.execute(  # type: ignore[attr-defined]
                    update(m.Notification)
                    .where(self._mine([nid]))
                    .values(
                        status="failed" if final else "pending",
                        attempts=n.attempts + 1,
                        next_attempt_at=to_db(now + backoff(n.attempts + 1)),
                        lease_until=None,
                        last_error=header_safe(error, 500),
                    )
                ).rowcount
                if not changed:
                    continue
                if final:
                    if n.purpose != "delivery-failed":  # never escalate an escalation
                        sweeper._failures.append(
                            _Failure(
                                n.partnership_id,
                                None,
                                f"notification {nid}",
                                header_safe(error, 300),
                            )
                        )
                    else:
                        report.undeliverable += 1
                        report.failures.append(f"notification {nid}: {error}")
                else:
                    report.failed += 1
                    report.retry.append(f"notification {nid} to {n.recipient}: {error}")
        self.held -= set(results)


class _AlreadyHandled(Exception):
    """Another sweeper claimed this review first (rolls our move back)."""


class _Recipients:
    """Who hears of a trigger: partner contacts and secretariat users with email."""

    def __init__(self, s: Session, partnership_ids: set[int]) -> None:
        self.secretariat = [
            (email, name)
            for name, email in s.execute(
                select(m.User.name, m.User.email).where(
                    m.User.role == "secretariat", col(m.User.email).is_not(None)
                )
            )
        ]
        self.partners: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
        ids = sorted(partnership_ids)
        for chunk in _chunks(ids, 500):
            for pid, email, contact, name in s.execute(
                select(
                    m.Partner.partnership_id,
                    m.Partner.contact_email,
                    m.Partner.contact_name,
                    m.Partner.name,
                ).where(
                    col(m.Partner.partnership_id).in_(chunk),
                    col(m.Partner.active).is_(True),
                    col(m.Partner.contact_email).is_not(None),
                )
            ):
                self.partners[pid].append((email, contact or name))
        #: Chat destinations: the portfolio's (None) hear everything, a partnership's
        #: what its partners hear.
        self.chat: dict[int | None, list[tuple[int, str]]] = defaultdict(list)
        wanted = set(ids)
        for cid, pid, label in s.execute(  # a handful of rows: read them all
            select(m.ChatChannel.id, m.ChatChannel.partnership_id, m.ChatChannel.label)
            .where(col(m.ChatChannel.active).is_(True))
            .order_by(col(m.ChatChannel.id))
        ):
            if pid is None or pid in wanted:
                self.chat[pid].append((cid, label))

    def chats(self, partnership_id: int, audience: str) -> list[tuple[int, str]]:
        found = list(self.chat.get(None, []))
        if audience == "all":
            found += self.chat.get(partnership_id, [])
        return found

    def for_(self, partnership_id: int, audience: str) -> list[tuple[str, str | None]]:
        people = list(self.secretariat)
        if audience == "all":
            people += self.partners.get(partnership_id, [])
        seen: set[str] = set()
        unique = []
        for address, name in people:
            if address.lower() not in seen:
                seen.add(address.lower())
                unique.append((address, name))
        return unique


def compose_failure(due: _Due, name: str, slug: str) -> tuple[str, str]:
    """Subject and body of the escalation of a failure to the secretariat."""
    d = due.detail
    lines = [
        f"Partnership: {name} ({slug})",
        f"The scheduler could not handle {d['what']}: {d['error']}",
    ]
    if due.purpose == "schedule-failed":
        subject = f"{name}: {d['what']} failed; its reminders and checks are not running"
        lines += [
            "Other schedules and partnerships are not affected.",
            "Secretariat: look at the partnership's schedules, replaced ones included, "
            "and agree this one again if its values are wrong.",
        ]
    else:
        subject = f"{name}: a notification could not be delivered"
        lines += [
            "It will not be retried; the outbox names its recipient.",
        ]
    return _safe_message(f"[mspflow] {subject}", "\n".join(lines) + "\n")


def _safe_message(subject: str, body: str) -> tuple[str, str]:
    """No CR/LF or other control character in the subject, no NUL in the body,
    whatever a partnership's name holds."""
    return header_safe(subject, 900), body.replace("\x00", "\ufffd")


def compose(due: _Due, plan: _Plan, *, late: bool) -> tuple[str, str]:
    """Subject and body of the message for a fired trigger (made header-safe)."""
    d = due.detail
    kind = plan.wf.schedule_kind(str(d.get("schedule", "")))
    what = kind.name if kind else "Time frame"
    late_mark = "(late) " if late else ""
    lines = [f"Partnership: {plan.name} ({plan.slug})"]
    if due.purpose == "reminder":
        subject = f"{late_mark}{plan.name}: {what.lower()} on {d['local']}"
        lines += [
            f"{what} (task {d['task']}) on {d['local']}, in {d['lead_days']} day(s).",
        ]
        if kind and kind.record and kind.record in RECORDS:
            lines.append(f"Afterwards, log the {RECORDS[kind.record][2]} in mspflow.")
    elif due.purpose == "overdue":
        missed = d.get("missed", [d["occurrence"]])
        label = RECORDS[str(d["record"])][2]
        subject = (
            f"{late_mark}{plan.name}: overdue, no {label} for the {what.lower()} of {d['local']}"
        )
        lines += [
            f"No {label} was logged within {d['grace_days']} day(s) of the {what.lower()} "
            f"(task {d['task']}).",
            f"Missed occurrence(s): {', '.join(missed)}.",
            "Secretariat: follow up with the partners, then log the record.",
        ]
    elif due.purpose == "review-due":
        subject = f"{plan.name}: {what.lower()} due; the partnership moves to step 9"
        lines += [
            f"The {what.lower()} (task {d['task']}) fell due on {d['local']}.",
            "The partnership moved to step 9 (reviewing) for the review panel.",
        ]
    elif due.purpose == "milestone-overdue":
        subject = f"{late_mark}{plan.name}: milestone {d['name']} is past its deadline"
        lines += [
            f"The milestone {d['name']} (task {d['task']}) was due on {d['due']} and is not "
            "recorded as reached.",
            f"Reason given for the delay: {d['delay']}."
            if d.get("delay")
            else "No reason for the delay is recorded.",
            "Secretariat: agree with the partners how to catch up; record the milestone "
            "as reached, or its new deadline.",
        ]
    else:  # time-frame-end
        subject = f"{late_mark}{plan.name}: the time frame ends on {d['end_date']}"
        lines += [
            f"The time frame recorded in the scope (task 2.3) ends on {d['end_date']}.",
            "Secretariat: consider step 12 (moving on): renew, transfer or end (task 12.1).",
        ]
    return _safe_message(f"[mspflow] {subject}", "\n".join(lines) + "\n")


#: "Nothing more will fire" (a one-off schedule whose time has passed).
NEVER = datetime(9999, 1, 1, tzinfo=timezone.utc)


def next_due(
    sched: m.Schedule, leads: Sequence[int], record: bool, review: bool, now: datetime
) -> datetime:
    """The first instant after ``now`` at which ``sched`` has something to fire:
    a reminder, the end of a grace period, or a review falling due."""
    best: datetime | None = None
    ahead = max(leads, default=0)
    tz = sched.timezone
    for o in iter_occurrences(
        sched.cadence,
        sched.starts_on,
        sched.local_time,
        tz,
        after=now - timedelta(days=sched.grace_days + 1),
        until=now + timedelta(days=800),
    ):
        if best is not None and shift_days(o, -ahead, tz) > best:
            break  # later occurrences fire later still
        moments = [shift_days(o, -d, tz) for d in leads]
        if record:
            moments.append(shift_days(o, sched.grace_days, tz))
        if review:
            moments.append(o)
        for moment in moments:
            if moment > now and (best is None or moment < best):
                best = moment
    return best or NEVER


def record_window(sched: m.Schedule, occurrence: datetime) -> tuple[date, date]:
    """The dates on which a record counts for ``occurrence``: half a period (at
    most 45 days) either side of it, or to the end of the grace period if that
    is later. A record dated after the grace period still closes the flag."""
    day = local_date(occurrence, sched.timezone)
    half = int(min(CADENCE_DAYS.get(sched.cadence, 90) / 2, 45))
    return day - timedelta(days=half), day + timedelta(days=max(half, sched.grace_days))


def record_exists(s: Session, sched: m.Schedule, first: date, last: date) -> bool:
    """Whether the record a schedule expects was logged for the dates given."""
    p = s.get(m.Partnership, sched.partnership_id)
    assert p is not None
    wf = definition_by_hash(s, p.workflow_hash)
    kind = wf.schedule_kind(sched.kind)
    if kind is None or kind.record is None or kind.record not in RECORDS:
        return True
    model, column, _ = RECORDS[kind.record]
    day = getattr(model, column)
    query = select(model.id).where(
        model.partnership_id == sched.partnership_id, day >= first, day <= last
    )
    if kind.record == "review":
        query = query.where(col(m.Review.kind).in_(REVIEW_KINDS.get(sched.kind, ("progress",))))
    return s.execute(query.limit(1)).first() is not None


def _auto_trigger(wf: Workflow, schedule_kind: str) -> AutoTrigger | None:
    return next((a for a in wf.auto_triggers if schedule_kind in a.schedules), None)


def _insert_new(s: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert fired triggers whose key is new; return {key: id} of those inserted."""
    if not rows:
        return {}
    table: Any = m.FiredTrigger.__table__  # type: ignore[attr-defined]
    stmt = (
        _dialect_insert(s)(table)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(table.c.key, table.c.id)
    )
    result = s.execute(stmt, rows)
    return {key: trigger_id for key, trigger_id in result}


def _dialect_insert(s: Session) -> Any:
    """The backend's INSERT, which knows ON CONFLICT."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
