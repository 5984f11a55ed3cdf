"""``mspflow schedule|remind|scheduler|calendar``: cadences, reminders, the daemon, calendars."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from mspflow.cli import App, _Group, emit, json_option, pass_app
from mspflow.errors import DeliveryError, InvalidInput, PartialSweep

__all__ = [
    "calendar",
    "remind",
    "schedule_fired",
    "schedule_list",
    "schedule_status",
    "scheduler",
]


def _days(values: Any) -> str:
    return ",".join(str(v) for v in values) or "-"


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}Z"


@click.command("list")
@click.argument("ref", metavar="P")
@click.option("--all", "show_all", is_flag=True, help="Include replaced schedules.")
@json_option
@pass_app
def schedule_list(app: App, ref: str, show_all: bool, as_json: bool) -> None:
    """P's schedules: cadence, local time and zone, reminders, grace, next occurrence."""
    from datetime import timedelta

    from mspflow.scheduler.status import schedules
    from mspflow.scheduler.times import occurrences
    from mspflow.store import read_session

    now = app.clock().now()
    with read_session(app.engine) as s:
        p = app.service.get(s, ref)
        rows = schedules(s, p, active_only=not show_all)
    data = []
    for r in rows:
        error = None
        try:
            upcoming = occurrences(r, after=now, until=now + timedelta(days=400))
        except Exception as exc:  # a stored row that cannot be computed: say so, go on
            from mspflow.scheduler.sweep import error_line

            upcoming, error = [], error_line(exc)
        data.append(
            {
                "id": r.id,
                "kind": r.kind,
                "cadence": r.cadence,
                "starts_on": str(r.starts_on),
                "local_time": r.local_time,
                "timezone": r.timezone,
                "lead_days": [int(x) for x in r.lead_days.split(",") if x.strip()],
                "grace_days": r.grace_days,
                "active": r.active,
                "next": upcoming[0].isoformat().replace("+00:00", "Z") if upcoming else None,
                "recorded_by": r.recorded_by,
                "error": error,
            }
        )

    def text() -> str:
        if not data:
            return f"{ref}: no schedules (add one with 'mspflow schedule add {ref} KIND ...')"
        return "\n".join(
            f"{d['id']:>4} {d['kind']:<24} {d['cadence']:<15} {d['local_time']} {d['timezone']:<20}"
            f" reminders {_days(d['lead_days'])} d, grace {d['grace_days']} d,"
            f" next {d['next'] or '-'}{'' if d['active'] else '  (replaced)'}"
            + (f"  FAILED: {d['error']}" if d["error"] else "")
            for d in data
        )

    emit(data, as_json, text)


@click.command("status")
@click.argument("ref", metavar="P", required=False)
@click.option("--days", default=30, show_default=True, help="How far ahead 'upcoming' looks.")
@json_option
@pass_app
def schedule_status(app: App, ref: str | None, days: int, as_json: bool) -> None:
    """What is overdue, due (awaiting its record) and upcoming for P.

    Without P, the portfolio: partnerships per step and every open overdue
    flag (as of the last sweep), however many partnerships there are.
    """
    from mspflow.scheduler.status import portfolio_counts, portfolio_overdue, schedule_items
    from mspflow.store import read_session

    if days < 0:
        raise InvalidInput("--days cannot be negative")
    now = app.clock().now()
    with read_session(app.engine) as s:
        if ref is not None:
            items = schedule_items(s, app.service.get(s, ref), now, days=days)
            counts = None
        else:
            items = portfolio_overdue(s)
            counts = portfolio_counts(s)
    data: dict[str, Any] = {
        "now": now.isoformat().replace("+00:00", "Z"),
        "items": [i.as_dict() for i in items],
        "counts": {
            status: sum(1 for i in items if i.status == status)
            for status in ("overdue", "due", "upcoming")
        },
    }
    if counts is not None:
        data["portfolio"] = counts

    def text() -> str:
        c = data["counts"]
        if counts is None:
            lines = [
                f"{c['overdue']} overdue, {c['due']} due, {c['upcoming']} upcoming ({days} days)"
            ]
        else:
            steps = ", ".join(f"{n} {state}" for state, n in sorted(counts["by_state"].items()))
            lines = [f"portfolio: {steps}", f"{c['overdue']} overdue (open flags of the sweeps)"]
        for i in items:
            extra = ""
            if i.status == "failed":
                extra = f"  cannot be computed: {i.error}"
            elif i.status != "upcoming":
                extra = f"  no {i.record} yet; deadline {_when(i.deadline)}"
                extra += " (flagged)" if i.flagged else ""
            lines.append(
                f"  {i.status:<8} {i.partnership:<24} {i.schedule:<22} task {i.task:<4}"
                f" {_when(i.occurrence)}{extra}"
            )
        return "\n".join(lines)

    emit(data, as_json, text)


@click.command("fired")
@click.argument("ref", metavar="P", required=False)
@click.option(
    "--purpose",
    type=click.Choice(
        [
            "reminder",
            "overdue",
            "review-due",
            "time-frame-end",
            "schedule-failed",
            "delivery-failed",
        ]
    ),
)
@click.option("--limit", default=50, show_default=True)
@json_option
@pass_app
def schedule_fired(
    app: App, ref: str | None, purpose: str | None, limit: int, as_json: bool
) -> None:
    """Triggers the scheduler fired (newest first): reminders, overdue flags, reviews,
    and the failures it recorded and escalated (with their error)."""
    from mspflow.scheduler.status import fired
    from mspflow.store import read_session

    with read_session(app.engine) as s:
        p = app.service.get(s, ref) if ref else None
        rows = fired(s, p, purpose=purpose, limit=limit)

    def text() -> str:
        return (
            "\n".join(
                f"{r['fired_at'][:16]}Z {r['partnership']:<24} {r['purpose']:<15}"
                f" {r['outcome']:<15}"
                f" {r['detail'].get('schedule', '')} {r['occurrence'][:16]}Z"
                + (" late" if r["late"] else "")
                + (" resolved" if r["resolved_at"] else "")
                + (f" error: {r['error']}" if r["error"] else "")
                for r in rows
            )
            or "nothing fired yet"
        )

    emit(rows, as_json, text)


# --------------------------------------------------------------------------- remind


def _sweeper(app: App, action: str, name: str | None = None) -> Any:
    """A sweeper for the acting user, who must be of the secretariat: a sweep
    writes, sends mail and moves partnerships."""
    from mspflow.auth import require_role
    from mspflow.scheduler.notify import EmailChannel, TerminalChannel, load_smtp_config
    from mspflow.scheduler.sweep import Sweeper

    require_role(app.actor(), "secretariat", action=action)

    channels: list[Any] = [TerminalChannel(click.echo)]
    config = load_smtp_config()
    if config is not None:
        channels.append(EmailChannel(config))
    return Sweeper(app.engine, app.clock(), channels=channels, name=name)


@click.group(cls=_Group)
def remind() -> None:
    """Fire due reminders once (for system cron), and look at the outbox."""


@remind.command("due")
@click.option("--now", help="Sweep as of this instant (ISO 8601; default: now).")
@json_option
@pass_app
def remind_due(app: App, now: str | None, as_json: bool) -> None:
    """One sweep: fire what fell due, deliver the outbox, exit.

    Exit 11 when a schedule could not be computed or a notification can never
    be sent: each is recorded with its error ('schedule fired', 'remind
    outbox'), escalated once to the secretariat, and everything else handled.
    Exit 10 when some notifications could not be delivered this time; they stay
    in the outbox and are retried with backoff. When both happen, 11 wins.
    Needs the secretariat role.
    """
    if now:
        app.now = now
    report = _sweeper(app, "run the reminder sweep").sweep()
    emit(report.as_dict(), as_json, report.summary)
    if report.failures:
        retry = f"; {report.failed} notification(s) kept for retry" if report.failed else ""
        raise PartialSweep(
            f"partial sweep: {report.schedule_failures} schedule(s) and "
            f"{report.undeliverable} notification(s) failed and were recorded{retry}; "
            f"the rest was handled (first: {report.failures[0]})",
            hint="see 'mspflow schedule fired --purpose schedule-failed' and "
            "'mspflow remind outbox'",
        )
    if report.failed:
        raise DeliveryError(
            f"{report.failed} notification(s) not delivered; kept in the outbox for retry "
            f"(first: {report.retry[0]})",
            hint="see 'mspflow remind outbox'",
        )


@remind.command("outbox")
@click.option("--all", "show_all", is_flag=True, help="Include sent notifications.")
@click.option("--limit", default=50, show_default=True)
@json_option
@pass_app
def remind_outbox(app: App, show_all: bool, limit: int, as_json: bool) -> None:
    """Notifications waiting to be delivered (or retried), oldest first."""
    from sqlmodel import col, select

    from mspflow.store import models as m
    from mspflow.store import read_session

    with read_session(app.engine) as s:
        query = select(m.Notification)
        if not show_all:
            query = query.where(m.Notification.status != "sent")
        rows = list(s.exec(query.order_by(col(m.Notification.id)).limit(limit)))
    data = [
        {
            "id": n.id,
            "channel": n.channel,
            "recipient": n.recipient,
            "subject": n.subject,
            "status": n.status,
            "attempts": n.attempts,
            "next_attempt_at": n.next_attempt_at.isoformat().replace("+00:00", "Z"),
            "last_error": n.last_error,
            "sent_at": n.sent_at.isoformat().replace("+00:00", "Z") if n.sent_at else None,
        }
        for n in rows
    ]
    emit(
        data,
        as_json,
        lambda: (
            "\n".join(
                f"{d['id']:>6} {d['status']:<8} {d['channel']:<8} {d['recipient']:<28}"
                f" tries {d['attempts']} {d['subject']}"
                + (f"\n         last error: {d['last_error']}" if d["last_error"] else "")
                for d in data
            )
            or "the outbox is empty"
        ),
    )


# --------------------------------------------------------------------------- daemon


@click.group(cls=_Group)
def scheduler() -> None:
    """The scheduler daemon (one or several per database)."""


@scheduler.command("run")
@click.option("--interval", default=60, show_default=True, help="Seconds between sweeps.")
@click.option("--name", help="This sweeper's name in the record (default: host:pid).")
@click.option("--max-sweeps", type=int, help="Stop after this many sweeps (supervised runs).")
@pass_app
def scheduler_run(app: App, interval: int, name: str | None, max_sweeps: int | None) -> None:
    """Sweep every --interval seconds until stopped (SIGINT/SIGTERM end it cleanly).

    Several daemons may run on one database: each trigger is claimed once, and
    each message is sent by the one daemon that holds its lease. A schedule or
    notification that fails is logged with its partnership and recorded; the
    daemon goes on. Needs the secretariat role.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    if interval < 1:
        raise InvalidInput("--interval must be at least 1 second")
    sweeper = _sweeper(app, "run the scheduler", name)
    daemon = BlockingScheduler(timezone="UTC")
    done = {"sweeps": 0, "down": 0}

    def sweep() -> None:
        from mspflow.scheduler.sweep import error_line

        try:
            report = sweeper.sweep()
        except Exception as exc:  # the database itself: keep the daemon alive, retry
            done["down"] += 1
            click.echo(
                f"mspflow: sweep {done['sweeps'] + 1} could not run ({done['down']} in a row): "
                f"{error_line(exc)}",
                err=True,
            )
        else:
            done["down"] = 0
            click.echo(report.summary())
            for line in report.failures:
                click.echo(f"mspflow: failed: {line}", err=True)
        done["sweeps"] += 1
        if max_sweeps is not None and done["sweeps"] >= max_sweeps:
            daemon.shutdown(wait=False)

    def stop(signum: int, _frame: Any) -> None:
        click.echo(f"stopping on signal {signum}", err=True)
        daemon.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from datetime import datetime, timezone

    daemon.add_job(
        sweep,
        IntervalTrigger(seconds=interval, timezone="UTC"),
        next_run_time=datetime.now(timezone.utc),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    click.echo(f"scheduler {sweeper.name}: sweeping every {interval} s", err=True)
    sys.stdout.flush()
    daemon.start()


# --------------------------------------------------------------------------- calendar


@click.group(cls=_Group)
def calendar() -> None:
    """Calendars (RFC 5545) of the agreed schedules."""


@calendar.command("export")
@click.argument("ref", metavar="P", required=False)
@click.option(
    "--output",
    "-o",
    required=True,
    metavar="PATH",
    help="The .ics file to write ('-' for standard output).",
)
@pass_app
def calendar_export(app: App, ref: str | None, output: str) -> None:
    """Write P's schedules (or the whole portfolio's) to an .ics file."""
    from sqlmodel import col, select

    from mspflow.scheduler.calendar import build_calendar, write_calendar
    from mspflow.store import models as m
    from mspflow.store import read_session

    with read_session(app.engine) as s:
        if ref:
            targets = [app.service.get(s, ref)]
            name = targets[0].name
        else:
            targets = list(s.exec(select(m.Partnership).order_by(col(m.Partnership.slug))))
            name = "mspflow portfolio"
        cal = build_calendar(s, targets, app.clock().now(), name=name)
    events = write_calendar(cal, output)
    # On standard output the calendar is the output: the count goes to stderr.
    click.echo(f"wrote {events} event(s) to {output}", err=output == "-")
