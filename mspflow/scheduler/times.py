"""When a schedule's occurrences fall, computed with APScheduler's trigger classes.

A schedule is partnership data (a row of :class:`mspflow.store.models.Schedule`):
a cadence, a first date, a wall-clock time and an IANA time zone. Its
occurrences are produced by an APScheduler 3 trigger built from that row:

* ``daily``/``weekly``/``every-two-weeks``/``monthly``/``quarterly``/
  ``half-yearly``/``yearly`` use :class:`CalendarIntervalTrigger`, which adds
  calendar days, weeks, months or years to the *local date* and then combines
  it with the wall-clock time. A 09:00 Europe/Berlin meeting therefore stays at
  09:00 in Berlin across both daylight-saving changes (its UTC instant moves);
* ``twice-monthly`` is two monthly triggers, fourteen days apart;
* ``once`` (the midterm review) is a :class:`DateTrigger`.

Month-based cadences repeat on the same day of the month, so they must start
on day 1-28 (a "monthly" meeting on the 31st would skip five months a year).

All instants leaving this module are timezone-aware UTC.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.date import DateTrigger

from mspflow.errors import InvalidInput

__all__ = [
    "CALENDAR_STEPS",
    "MONTH_BASED",
    "at_local",
    "check_start",
    "iter_occurrences",
    "local_date",
    "midterm_date",
    "occurrences",
    "parse_local_time",
    "second_of_month",
    "shift_days",
    "triggers_for",
]

#: How each cadence steps through the calendar (CalendarIntervalTrigger keywords).
CALENDAR_STEPS: dict[str, dict[str, int]] = {
    "daily": {"days": 1},
    "weekly": {"weeks": 1},
    "every-two-weeks": {"weeks": 2},
    "twice-monthly": {"months": 1},  # two of them, see trigger_for
    "monthly": {"months": 1},
    "quarterly": {"months": 3},
    "half-yearly": {"months": 6},
    "yearly": {"years": 1},
}

MONTH_BASED = frozenset({"twice-monthly", "monthly", "quarterly", "half-yearly", "yearly"})


def parse_local_time(text: str) -> time:
    """``HH:MM`` on a 24-hour clock."""
    try:
        hour, minute = (int(part) for part in text.split(":"))
        return time(hour, minute)
    except ValueError:
        raise InvalidInput(
            f"'{text}' is not a time of day", hint="write it as HH:MM, e.g. 09:00"
        ) from None


def check_start(cadence: str, starts_on: date) -> None:
    """Refuse a first date that a month-based cadence cannot repeat every month."""
    if cadence in MONTH_BASED and starts_on.day > 28:
        raise InvalidInput(
            f"a {cadence} schedule cannot start on day {starts_on.day} of a month "
            "(shorter months have no such day)",
            hint="choose a start date on day 1-28",
        )


def at_local(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``tz``.

    A time that does not exist that day (skipped by a forward DST change) moves
    forward by the gap; an ambiguous one takes its first occurrence.
    """
    zone = ZoneInfo(tz)
    local = datetime.combine(day, at, tzinfo=zone)
    instant = local.astimezone(timezone.utc)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        instant = local.replace(fold=1).astimezone(timezone.utc)
    return instant


def local_date(instant: datetime, tz: str) -> date:
    return instant.astimezone(ZoneInfo(tz)).date()


def shift_days(instant: datetime, days: int, tz: str) -> datetime:
    """``instant`` moved by whole calendar days in ``tz``, keeping the wall-clock time."""
    zone = ZoneInfo(tz)
    local = instant.astimezone(zone)
    return at_local(local.date() + timedelta(days=days), local.timetz().replace(tzinfo=None), tz)


def midterm_date(start: date, end: date) -> date:
    """Halfway through the time frame (task 2.3 scope; task 9.1 midterm review)."""
    return start + (end - start) // 2


@lru_cache(maxsize=4096)
def triggers_for(cadence: str, starts_on: date, local_time: str, tz: str) -> tuple[Any, ...]:
    """The APScheduler triggers whose merged fire times are a schedule's occurrences.

    Triggers hold no state between calls, so one set serves every sweep (cached).

    One trigger, except for ``twice-monthly``: two monthly ones fourteen days
    apart. (They are merged here rather than with ``OrTrigger``, which would
    hand each trigger the other's previous fire time and so break the
    calendar arithmetic.)
    """
    at = parse_local_time(local_time)
    zone = ZoneInfo(tz)
    if cadence == "once":
        return (DateTrigger(run_date=at_local(starts_on, at, tz), timezone=zone),)
    if cadence not in CALENDAR_STEPS:
        raise InvalidInput(f"unknown cadence '{cadence}'")
    check_start(cadence, starts_on)

    def calendar(first: date) -> CalendarIntervalTrigger:
        return CalendarIntervalTrigger(
            **CALENDAR_STEPS[cadence],
            hour=at.hour,
            minute=at.minute,
            start_date=first,
            timezone=zone,
        )

    if cadence == "twice-monthly":
        return (calendar(starts_on), calendar(second_of_month(starts_on)))
    return (calendar(starts_on),)


def second_of_month(starts_on: date) -> date:
    """The first date after ``starts_on`` of a twice-monthly schedule's other day.

    The two days are fourteen apart and both within days 1-28.
    """
    if starts_on.day + 14 <= 28:
        return starts_on + timedelta(days=14)
    year, month = divmod(starts_on.year * 12 + starts_on.month, 12)  # next month
    return date(year, month + 1, starts_on.day - 14)


def occurrences(
    schedule: Any,
    *,
    after: datetime,
    until: datetime,
    starts_on: date | None = None,
) -> list[datetime]:
    """UTC instants of ``schedule``'s occurrences with ``after < t <= until``.

    ``schedule`` is a :class:`~mspflow.store.models.Schedule` row (or anything
    with ``cadence``, ``starts_on``, ``local_time`` and ``timezone``);
    ``starts_on`` overrides its first date (a derived midterm review).
    """
    return list(
        iter_occurrences(
            schedule.cadence,
            starts_on or schedule.starts_on,
            schedule.local_time,
            schedule.timezone,
            after=after,
            until=until,
        )
    )


def iter_occurrences(
    cadence: str,
    starts_on: date,
    local_time: str,
    tz: str,
    *,
    after: datetime,
    until: datetime,
) -> Iterator[datetime]:
    """Occurrences in ``(after, until]``, in order, as UTC instants."""
    if after.tzinfo is None or until.tzinfo is None:
        raise ValueError("occurrences need timezone-aware bounds")
    streams = [
        _fire_times(trigger, _first_at_or_after(cadence, first, local_time, tz, after), after)
        for trigger, first in zip(
            triggers_for(cadence, starts_on, local_time, tz),
            _firsts(cadence, starts_on),
            strict=True,
        )
    ]
    for instant in heapq.merge(*streams):
        if instant > until:
            return
        if instant > after:
            yield instant


def _firsts(cadence: str, starts_on: date) -> list[date]:
    if cadence == "twice-monthly":
        return [starts_on, second_of_month(starts_on)]
    return [starts_on]


def _fire_times(trigger: Any, first: datetime | None, now: datetime) -> Iterator[datetime]:
    candidate = first if first is not None else trigger.get_next_fire_time(None, now)
    while candidate is not None:
        yield candidate.astimezone(timezone.utc)
        following = trigger.get_next_fire_time(candidate, now)
        if following is None or following <= candidate:  # a one-off, or defensive
            return
        candidate = following


def _first_at_or_after(
    cadence: str, starts_on: date, local_time: str, tz: str, after: datetime
) -> datetime | None:
    """Skip whole periods before ``after`` without walking them one by one.

    Only used for day- and week-based cadences, where the period is a fixed
    number of local days; month-based ones are walked (a few per year).
    """
    steps = CALENDAR_STEPS.get(cadence, {})
    days = steps.get("days", 0) + 7 * steps.get("weeks", 0)
    if not days or cadence not in CALENDAR_STEPS:
        return None
    behind = (local_date(after, tz) - starts_on).days
    if behind <= days:
        return None
    jump = (behind // days - 1) * days
    return at_local(starts_on + timedelta(days=jump), parse_local_time(local_time), tz).astimezone(
        ZoneInfo(tz)
    )
