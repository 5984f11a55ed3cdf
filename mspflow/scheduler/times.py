"""When a schedule's occurrences fall, in the schedule's own time zone.

A schedule is partnership data (a row of :class:`mspflow.store.models.Schedule`):
a cadence, a first date, a wall-clock time and an IANA time zone. Its
occurrences are computed in two steps:

1. **Local dates.** ``daily``/``weekly``/``every-two-weeks`` add whole days
   to the first date; ``monthly``/``quarterly``/``half-yearly``/``yearly``
   add months, keeping the day of the month; ``twice-monthly`` is two monthly
   series fourteen days apart; ``once`` (the midterm review) is one date.
2. **Instants.** Each local date is combined with the wall-clock time in the
   zone (:func:`at_local`). A 09:00 Europe/Berlin meeting therefore stays at
   09:00 in Berlin across both daylight-saving changes (its UTC instant moves).

Daylight-saving policy (the reading RFC 5545 gives ``DTSTART``/``RRULE``, so
the calendar file and the sweep agree on every instant):

* a wall-clock time that does not exist that day (skipped by a forward
  change) fires later by the length of the gap: Europe/Berlin 02:30 on
  2027-03-28 fires at 03:30 CEST, America/Santiago 00:00 on the September
  change at 01:00, Australia/Lord_Howe 02:15 on the October change at 02:45;
* a wall-clock time that exists twice (a backward change) fires at the first
  of the two instants;
* nothing is ever dropped, moved to the day before, or repeated.

(APScheduler's ``CalendarIntervalTrigger`` is not used here: it discards a
date whose time falls in a gap, and a series restarted from a shifted instant
drifts to another weekday.)

Lead days and grace periods are whole calendar days in the schedule's zone
(:func:`shift_days`): a reminder seven days before a 09:00 meeting fires at
09:00 local time, also across a daylight-saving change, as a calendar alarm
of ``-P7D`` does.

Month-based cadences repeat on the same day of the month, so they must start
on day 1-28 (a "monthly" meeting on the 31st would skip five months a year).

All instants leaving this module are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from mspflow.errors import InvalidInput

__all__ = [
    "CALENDAR_STEPS",
    "MONTH_BASED",
    "at_local",
    "check_start",
    "iter_occurrences",
    "lead_days",
    "local_date",
    "midterm_date",
    "occurrences",
    "parse_local_time",
    "second_of_month",
    "shift_days",
]

#: How each cadence steps through the calendar (days, or months).
CALENDAR_STEPS: dict[str, dict[str, int]] = {
    "daily": {"days": 1},
    "weekly": {"weeks": 1},
    "every-two-weeks": {"weeks": 2},
    "twice-monthly": {"months": 1},  # two series, see _series
    "monthly": {"months": 1},
    "quarterly": {"months": 3},
    "half-yearly": {"months": 6},
    "yearly": {"years": 1},
}

MONTH_BASED = frozenset({"twice-monthly", "monthly", "quarterly", "half-yearly", "yearly"})


@lru_cache(maxsize=256)
def lead_days(text: str) -> list[int]:
    """A schedule's reminder lead days as stored (``"30,7"``), in the order given."""
    return list(dict.fromkeys(int(x) for x in text.split(",") if x.strip()))


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

    ``fold=0`` is the whole policy (PEP 495): a time inside a forward gap is
    read with the offset in force before the gap, which lands the same length
    after it (02:30 in a one-hour gap fires at 03:30); an ambiguous time takes
    its first instant.
    """
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def local_date(instant: datetime, tz: str) -> date:
    return instant.astimezone(ZoneInfo(tz)).date()


def shift_days(instant: datetime, days: int, tz: str) -> datetime:
    """``instant`` moved by whole calendar days in ``tz``, keeping the wall-clock time."""
    local = instant.astimezone(ZoneInfo(tz))
    return at_local(local.date() + timedelta(days=days), local.time(), tz)


def midterm_date(start: date, end: date) -> date:
    """Halfway through the time frame (task 2.3 scope; task 9.1 midterm review)."""
    return start + (end - start) // 2


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
    """Occurrences in ``(after, until]``, in order, as UTC instants.

    Raises ``OverflowError``/``ValueError`` for a schedule whose dates leave
    the calendar (years 1-9999); the sweep records that per schedule.
    """
    if after.tzinfo is None or until.tzinfo is None:
        raise ValueError("occurrences need timezone-aware bounds")
    at = parse_local_time(local_time)
    # A day either side: the local date of ``after`` may differ from its UTC date.
    first_day = local_date(after, tz) - timedelta(days=1)
    streams = [_days(cadence, start, first_day) for start in _series(cadence, starts_on)]
    days: Iterator[date] = streams[0] if len(streams) == 1 else _merge(*streams)
    for day in days:
        instant = at_local(day, at, tz)
        if instant > until:
            return
        if instant > after:
            yield instant


def _series(cadence: str, starts_on: date) -> list[date]:
    if cadence != "once" and cadence not in CALENDAR_STEPS:
        raise InvalidInput(f"unknown cadence '{cadence}'", field="cadence")
    check_start(cadence, starts_on)
    if cadence == "twice-monthly":
        return [starts_on, second_of_month(starts_on)]
    return [starts_on]


def _days(cadence: str, start: date, first_day: date) -> Iterator[date]:
    """The local dates of one series, from the first at or after ``first_day``."""
    if cadence == "once":
        yield start
        return
    steps = CALENDAR_STEPS[cadence]
    days = steps.get("days", 0) + 7 * steps.get("weeks", 0)
    if days:
        k = max(0, -(-(first_day - start).days // days))  # skip whole periods
        day = start + timedelta(days=k * days)
        while True:
            yield day
            day += timedelta(days=days)
    months = steps.get("months", 0) + 12 * steps.get("years", 0)
    behind = (first_day.year - start.year) * 12 + first_day.month - start.month
    k = max(0, behind // months)
    while True:
        year, month = divmod(start.month - 1 + k * months, 12)
        yield date(start.year + year, month + 1, start.day)
        k += 1


def _merge(a: Iterator[date], b: Iterator[date]) -> Iterator[date]:
    """Two ascending, endless date series as one."""
    x, y = next(a), next(b)
    while True:
        if x <= y:
            yield x
            x = next(a)
        else:
            yield y
            y = next(b)
