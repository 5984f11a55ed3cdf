"""RFC 5545 calendars of the agreed schedules, for partners' own calendar apps.

Each active schedule becomes one recurring event: ``DTSTART`` in the
partnership's time zone (with its ``VTIMEZONE``), an ``RRULE`` for the
cadence, ``UNTIL`` the end of the time frame when it is known, and one
``VALARM`` per reminder lead time. The ``UID`` is stable, so importing an
updated file replaces events instead of duplicating them.

``DTSTART`` holds the agreed wall-clock time itself (not the instant of the
first occurrence), so a calendar app that reads the file as RFC 5545 says
(section 3.3.5: a local time inside a daylight-saving gap is read with the
offset before the gap) shows every occurrence at the instant the sweep fires
it: :mod:`.times` follows the same reading. A ``VALARM`` of ``-P7D`` is seven
calendar days, at the same wall-clock time, as a lead time is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from mspflow.outfile import write_output
from mspflow.scheduler.times import at_local, lead_days, parse_local_time, second_of_month
from mspflow.store import models as m
from mspflow.store.definitions import definition_for

__all__ = ["RRULES", "build_calendar", "write_calendar"]

#: The recurrence rule of each cadence (twice-monthly adds BYMONTHDAY).
RRULES: dict[str, dict[str, Any]] = {
    "daily": {"FREQ": "DAILY"},
    "weekly": {"FREQ": "WEEKLY"},
    "every-two-weeks": {"FREQ": "WEEKLY", "INTERVAL": 2},
    "twice-monthly": {"FREQ": "MONTHLY"},
    "monthly": {"FREQ": "MONTHLY"},
    "quarterly": {"FREQ": "MONTHLY", "INTERVAL": 3},
    "half-yearly": {"FREQ": "MONTHLY", "INTERVAL": 6},
    "yearly": {"FREQ": "YEARLY"},
}
_DURATION = timedelta(hours=1)


def build_calendar(
    s: Session, partnerships: list[m.Partnership], now: datetime, *, name: str
) -> Any:
    """An ``icalendar.Calendar`` of the active schedules of ``partnerships``."""
    from icalendar import Alarm, Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//mspflow//schedules//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for p in partnerships:
        wf = definition_for(s, p)
        if wf.is_final(p.state):
            continue
        scope = s.get(m.Scope, p.id)
        rows = s.exec(
            select(m.Schedule)
            .where(m.Schedule.partnership_id == p.id, col(m.Schedule.active).is_(True))
            .order_by(col(m.Schedule.id))
        )
        for sched in rows:
            kind = wf.schedule_kind(sched.kind)
            title = kind.name if kind else sched.kind
            zone = ZoneInfo(sched.timezone)
            # The wall-clock time as agreed (fold 0), even where the first date's
            # time falls in a gap: the RRULE repeats this wall-clock time.
            start = datetime.combine(
                sched.starts_on, parse_local_time(sched.local_time), tzinfo=zone
            )
            event = Event()
            event.add("uid", f"{p.slug}.schedule-{sched.id}@mspflow")
            event.add("dtstamp", now)
            event.add("summary", f"{p.name}: {title}")
            event.add(
                "description",
                f"{title} of {p.name} (task {kind.task if kind else '?'}), "
                f"{sched.cadence}; agreed by {sched.recorded_by}.",
            )
            event.add("dtstart", start)
            event.add("duration", _DURATION)
            event.add("categories", ["mspflow", sched.kind])
            if sched.cadence in RRULES:
                rule = dict(RRULES[sched.cadence])
                if sched.cadence == "twice-monthly":
                    rule["BYMONTHDAY"] = sorted(
                        {sched.starts_on.day, second_of_month(sched.starts_on).day}
                    )
                if scope is not None and scope.end_date is not None:
                    rule["UNTIL"] = at_local(
                        scope.end_date, parse_local_time("23:59"), sched.timezone
                    )
                event.add("rrule", rule)
            for days in sorted(lead_days(sched.lead_days)):
                alarm = Alarm()
                alarm.add("action", "DISPLAY")
                alarm.add("description", f"{title} of {p.name} in {days} day(s)")
                alarm.add("trigger", timedelta(days=-days))
                event.add_component(alarm)
            cal.add_component(event)
        if scope is not None and scope.end_date is not None:
            end = Event()
            end.add("uid", f"{p.slug}.time-frame-end@mspflow")
            end.add("dtstamp", now)
            end.add("summary", f"{p.name}: end of the time frame (consider step 12)")
            end.add("dtstart", scope.end_date)
            cal.add_component(end)
    cal.add_missing_timezones()
    return cal


def write_calendar(cal: Any, target: str) -> int:
    """Write ``cal`` to ``target`` (a path, or ``-`` for standard output) through
    :func:`mspflow.outfile.write_output`; return the number of events."""
    text = cal.to_ical().decode("utf-8")
    write_output(target, lambda out: out.write(text))
    return sum(1 for c in cal.walk("VEVENT"))
