"""``mspflow schedule|remind|scheduler|calendar``: cadences, reminders, the daemon, calendars."""

from __future__ import annotations

import sys
from typing import Any

import click

from mspflow.cli.base import App, Group, emit, json_option, pass_app
from mspflow.cli.evidence import LazyGroup

__all__ = ["register"]


def _days(values: Any) -> str:
    return ",".join(str(v) for v in values) or "-"


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}Z"


@click.group(cls=LazyGroup, lazy={"add": "schedule"})
def schedule() -> None:
    """Agreed cadences: coordination meetings, monitoring, reviews (FRAMEWORK 4)."""


@schedule.command("list")
@click.argument("partnership", metavar="P")
@click.option("--all", "include_replaced", is_flag=True, help="Include replaced schedules.")
@json_option
@pass_app
def schedule_list(app: App, partnership: str, include_replaced: bool, as_json: bool) -> None:
    """P's schedules: cadence, local time and zone, reminders, grace, next occurrence."""
    rows = app.mspflow.schedules.list(partnership=partnership, include_replaced=include_replaced)

    def text() -> str:
        if not rows:
            return (
                f"{partnership}: no schedules "
                f"(add one with 'mspflow schedule add {partnership} KIND ...')"
            )
        return "\n".join(
            f"{d.id:>4} {d.kind:<24} {d.cadence:<15} {d.local_time} {d.timezone:<20}"
            f" reminders {_days(d.lead_days)} d, grace {d.grace_days} d,"
            f" next {d.next or '-'}{'' if d.active else '  (replaced)'}"
            + (f"  FAILED: {d.error}" if d.error else "")
            for d in rows
        )

    emit(rows, as_json, text)


@schedule.command("status")
@click.argument("partnership", metavar="P", required=False)
@click.option("--days", default=30, show_default=True, help="How far ahead 'upcoming' looks.")
@json_option
@pass_app
def schedule_status(app: App, partnership: str | None, days: int, as_json: bool) -> None:
    """What is overdue, due (awaiting its record) and upcoming for P.

    Without P, the portfolio: partnerships per step and every open overdue
    flag (as of the last sweep), however many partnerships there are.
    """
    found = app.mspflow.schedules.status(partnership=partnership, days=days)

    def text() -> str:
        c = found.counts
        if found.portfolio is None:
            lines = [
                f"{c['overdue']} overdue, {c['due']} due, {c['upcoming']} upcoming ({days} days)"
            ]
        else:
            by_state = found.portfolio["by_state"]
            steps = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
            lines = [f"portfolio: {steps}", f"{c['overdue']} overdue (open flags of the sweeps)"]
        for i in found.items:
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

    emit(found, as_json, text)


@schedule.command("fired")
@click.argument("partnership", metavar="P", required=False)
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
    app: App, partnership: str | None, purpose: str | None, limit: int, as_json: bool
) -> None:
    """Triggers the scheduler fired (newest first): reminders, overdue flags, reviews,
    and the failures it recorded and escalated (with their error)."""
    rows = app.mspflow.schedules.fired(partnership=partnership, purpose=purpose, limit=limit)

    def text() -> str:
        return (
            "\n".join(
                f"{r.fired_at[:16]}Z {r.partnership:<24} {r.purpose:<15}"
                f" {r.outcome:<15}"
                f" {r.detail.get('schedule', '')} {r.occurrence[:16]}Z"
                + (" late" if r.late else "")
                + (" resolved" if r.resolved_at else "")
                + (f" error: {r.error}" if r.error else "")
                for r in rows
            )
            or "nothing fired yet"
        )

    emit(rows, as_json, text)


@click.group(cls=Group)
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
    from mspflow.services.scheduler import check_report

    if now:
        app.now = now  # before the facade is made: its clock stands at this instant
    report = app.mspflow.scheduler.sweep(say=click.echo)
    emit(report.as_dict(), as_json, report.summary)
    check_report(report)


@remind.command("outbox")
@click.option("--all", "include_sent", is_flag=True, help="Include sent notifications.")
@click.option("--limit", default=50, show_default=True)
@json_option
@pass_app
def remind_outbox(app: App, include_sent: bool, limit: int, as_json: bool) -> None:
    """Notifications waiting to be delivered (or retried), oldest first."""
    rows = app.mspflow.schedules.outbox(include_sent=include_sent, limit=limit)
    emit(
        rows,
        as_json,
        lambda: (
            "\n".join(
                f"{d.id:>6} {d.status:<8} {d.channel:<8} {d.recipient:<28}"
                f" tries {d.attempts} {d.subject}"
                + (f"\n         last error: {d.last_error}" if d.last_error else "")
                for d in rows
            )
            or "the outbox is empty"
        ),
    )


@click.group(cls=Group)
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

    def say(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    app.mspflow.scheduler.run(
        interval=interval,
        name=name,
        max_sweeps=max_sweeps,
        say=say,
        warn=lambda line: click.echo(f"mspflow: {line}", err=True),
        note=lambda line: click.echo(line, err=True),
    )


@click.group(cls=Group)
def calendar() -> None:
    """Calendars (RFC 5545) of the agreed schedules."""


@calendar.command("export")
@click.argument("partnership", metavar="P", required=False)
@click.option(
    "--output",
    "-o",
    required=True,
    metavar="PATH",
    help="The .ics file to write ('-' for standard output).",
)
@pass_app
def calendar_export(app: App, partnership: str | None, output: str) -> None:
    """Write P's schedules (or the whole portfolio's) to an .ics file."""
    from mspflow.scheduler.calendar import write_calendar

    cal = app.mspflow.schedules.calendar(partnership=partnership)
    events = write_calendar(cal, output)
    # On standard output the calendar is the output: the count goes to stderr.
    click.echo(f"wrote {events} event(s) to {output}", err=output == "-")


@click.group(cls=Group)
def channel() -> None:
    """Chat and webhook destinations of notifications (Apprise URLs)."""


@channel.command("add")
@click.argument("url")
@click.option("--label", required=True, help="A name for the destination (unique).")
@click.option("-p", "--partnership", metavar="P", help="Only P's notifications (else all).")
@json_option
@pass_app
def channel_add(app: App, url: str, label: str, partnership: str | None, as_json: bool) -> None:
    """Send notifications to URL too: json://host/path (a webhook), Teams workflows,
    slack://..., matrix://... (any service Apprise knows)."""
    done = app.mspflow.channels.add(url=url, label=label, partnership=partnership)
    whose = f"partnership {done.partnership}" if done.partnership else "the portfolio"
    emit(done, as_json, f"channel {done.label} added ({done.service}, {whose})")


@channel.command("list")
@click.option("-p", "--partnership", metavar="P", help="Only P's destinations.")
@json_option
@pass_app
def channel_list(app: App, partnership: str | None, as_json: bool) -> None:
    """The destinations (their service and host; a URL's token is never shown)."""
    rows = app.mspflow.channels.list(partnership=partnership)
    emit(
        rows,
        as_json,
        lambda: (
            "\n".join(
                f"#{r.id} {r.label}: {r.service} ({r.partnership or 'portfolio'})" for r in rows
            )
            or "no channels"
        ),
    )


@channel.command("test")
@click.argument("channel_name", metavar="CHANNEL")
@pass_app
def channel_test(app: App, channel_name: str) -> None:
    """Post a test message to CHANNEL (label or id) now; exit 10 if it is not taken."""
    done = app.mspflow.channels.test(channel=channel_name)
    click.echo(f"channel {done.label}: test message delivered")


def register(main: click.Group) -> None:
    for command in (schedule, remind, scheduler, calendar, channel):
        main.add_command(command)
