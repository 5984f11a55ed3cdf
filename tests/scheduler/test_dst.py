"""Daylight-saving changes: one instant per occurrence, the same everywhere.

Policy (RFC 5545's reading of a local time): a time that does not exist moves
forward by the length of the gap; an ambiguous time keeps its first instant;
lead days and grace are calendar days in the schedule's zone. Reminders,
overdue flags, ``schedule status``, ``schedule list`` and the calendar file
must name the same instants; the expected ones are written out literally.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Calendar
from sqlalchemy import Engine
from sqlmodel import select

from mspflow.clock import ManualClock
from mspflow.scheduler.calendar import build_calendar, write_calendar
from mspflow.scheduler.times import occurrences
from mspflow.services.status import schedule_items
from mspflow.store import models as m
from mspflow.store import read_session
from tests.scheduler.test_isolation import add_schedule
from tests.scheduler.test_sweep import detail, fired

UTC = timezone.utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def reminders(engine: Engine, sid: int) -> list[tuple[datetime, datetime]]:
    """(occurrence, due at) of the reminders fired for schedule ``sid``."""
    return sorted(
        (t.occurrence.astimezone(UTC), t.due_at.astimezone(UTC))
        for t in fired(engine, "reminder")
        if t.schedule_id == sid
    )


def flags(engine: Engine, sid: int) -> list[datetime]:
    return sorted(
        t.occurrence.astimezone(UTC) for t in fired(engine, "overdue") if t.schedule_id == sid
    )


def status(engine: Engine, slug: str, sid: int, now: datetime, days: int) -> dict[str, list[Any]]:
    with read_session(engine) as s:
        p = s.exec(select(m.Partnership).where(m.Partnership.slug == slug)).one()
        items = [i for i in schedule_items(s, p, now, days=days) if i.schedule_id == sid]
    out: dict[str, list[Any]] = {}
    for i in items:
        out.setdefault(i.status, []).append(i.occurrence.astimezone(UTC))
    return out


def calendar_instants(
    engine: Engine, slug: str, sid: int, until: datetime, tmp_path: Path
) -> list[datetime]:
    """The occurrences the exported .ics file implies, read back as RFC 5545 says."""
    path = tmp_path / f"{slug}.ics"
    with read_session(engine) as s:
        p = s.exec(select(m.Partnership).where(m.Partnership.slug == slug)).one()
        write_calendar(build_calendar(s, [p], utc(2027, 1, 1), name=slug), str(path))
    cal = Calendar.from_ical(path.read_bytes())
    [event] = [e for e in cal.walk("VEVENT") if str(e["uid"]) == f"{slug}.schedule-{sid}@mspflow"]
    start = event.decoded("dtstart")
    rule = rrulestr(event["rrule"].to_ical().decode(), dtstart=start)
    return [t.astimezone(UTC) for t in rule.between(start - timedelta(seconds=1), until, inc=True)]


def listed_next(engine: Engine, sid: int, now: datetime) -> datetime:
    with read_session(engine) as s:
        sched = s.get(m.Schedule, sid)
        assert sched is not None
        return occurrences(sched, after=now, until=now + timedelta(days=400))[0]


def sweep_at(sweeper: Any, clock: ManualClock, instant: datetime) -> None:
    clock.set(instant)
    sweeper.sweep()


def test_berlin_0230_on_the_march_change_fires_at_0330_cest_everywhere(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, tmp_path: Path
) -> None:
    sid = add_schedule(
        engine, water, cadence="daily", starts_on=date(2027, 3, 26), local_time="02:30",
        lead_days="1", grace_days=1,
    )  # fmt: skip
    expected = [
        utc(2027, 3, 26, 1, 30),  # 02:30 CET
        utc(2027, 3, 27, 1, 30),  # 02:30 CET
        utc(2027, 3, 28, 1, 30),  # 02:30 does not exist: 03:30 CEST
        utc(2027, 3, 29, 0, 30),  # 02:30 CEST
        utc(2027, 3, 30, 0, 30),
    ]
    assert status(engine, water, sid, utc(2027, 3, 25), 6)["upcoming"] == expected
    assert calendar_instants(engine, water, sid, utc(2027, 3, 30, 12), tmp_path) == expected
    assert listed_next(engine, sid, utc(2027, 3, 27, 12)) == utc(2027, 3, 28, 1, 30)
    # A series that starts on the gap day: the file repeats 02:30, not the shifted 03:30.
    gap_start = add_schedule(
        engine, water, cadence="daily", starts_on=date(2027, 3, 28), local_time="02:30"
    )
    assert (
        calendar_instants(engine, water, gap_start, utc(2027, 3, 30, 12), tmp_path)
        == (expected[2:])
    )

    sweeper = sweeper_for()
    # The reminder a day ahead: 03:30 on the 27th (CET), the wall-clock time it fires at.
    sweep_at(sweeper, clock, utc(2027, 3, 27, 2, 30) - timedelta(seconds=1))
    assert utc(2027, 3, 28, 1, 30) not in [o for o, _ in reminders(engine, sid)]
    sweep_at(sweeper, clock, utc(2027, 3, 27, 2, 30))
    [gap] = [
        t
        for t in fired(engine, "reminder")
        if t.schedule_id == sid and detail(t)["occurrence"] == "2027-03-28T01:30Z"
    ]
    assert gap.outcome == "notified"
    assert detail(gap)["local"] == "2027-03-28 03:30 Europe/Berlin"
    sweep_at(sweeper, clock, utc(2027, 3, 31, 12))
    ahead = [utc(2027, 3, 31, 0, 30), utc(2027, 4, 1, 0, 30)]  # reminded on the 30th and 31st
    assert [o for o, _ in reminders(engine, sid)] == expected + ahead
    assert flags(engine, sid) == expected  # each one flagged, none dropped, none invented
    assert status(engine, water, sid, utc(2027, 3, 31, 12), 0)["overdue"] == expected


def test_santiago_midnight_weekly_across_the_september_change_stays_on_sundays(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, tmp_path: Path
) -> None:
    sid = add_schedule(
        engine, water, cadence="weekly", starts_on=date(2027, 8, 22), local_time="00:00",
        timezone="America/Santiago", lead_days="1", grace_days=2,
    )  # fmt: skip
    expected = [
        utc(2027, 8, 22, 4),  # Sunday 00:00 -04
        utc(2027, 8, 29, 4),
        utc(2027, 9, 5, 4),  # 00:00 does not exist: Sunday 01:00 -03
        utc(2027, 9, 12, 3),  # Sunday 00:00 -03
        utc(2027, 9, 19, 3),
        utc(2027, 9, 26, 3),
    ]
    santiago = ZoneInfo("America/Santiago")
    assert {t.astimezone(santiago).weekday() for t in expected} == {6}
    assert status(engine, water, sid, utc(2027, 8, 21), 37)["upcoming"] == expected
    assert calendar_instants(engine, water, sid, utc(2027, 9, 27), tmp_path) == expected

    sweeper = sweeper_for()
    sweep_at(sweeper, clock, utc(2027, 8, 21))
    sweep_at(sweeper, clock, utc(2027, 9, 29))  # after the last grace period
    assert [o for o, _ in reminders(engine, sid)] == expected
    # The reminders a day ahead, at the wall-clock time of the instant that fires.
    assert dict(reminders(engine, sid))[utc(2027, 9, 5, 4)] == utc(2027, 9, 4, 5)  # Sat 01:00 -04
    assert flags(engine, sid) == expected  # no flag for a Saturday that never had a meeting
    assert status(engine, water, sid, utc(2027, 9, 29), 0)["overdue"] == expected


def test_lord_howe_half_hour_changes_give_the_same_instants_everywhere(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, tmp_path: Path
) -> None:
    october = add_schedule(
        engine, water, cadence="weekly", starts_on=date(2027, 9, 19), local_time="02:15",
        timezone="Australia/Lord_Howe", lead_days="1", grace_days=1,
    )  # fmt: skip
    april = add_schedule(
        engine, water, cadence="weekly", starts_on=date(2027, 3, 21), local_time="01:45",
        timezone="Australia/Lord_Howe", lead_days="1", grace_days=1,
    )  # fmt: skip
    expected = {
        april: [
            utc(2027, 3, 20, 14, 45),  # 01:45 +11:00
            utc(2027, 3, 27, 14, 45),
            utc(2027, 4, 3, 14, 45),  # 01:45 happens twice on 4 April: the first, +11:00
            utc(2027, 4, 10, 15, 15),  # 01:45 +10:30
            utc(2027, 4, 17, 15, 15),
        ],
        october: [
            utc(2027, 9, 18, 15, 45),  # 02:15 +10:30
            utc(2027, 9, 25, 15, 45),
            utc(2027, 10, 2, 15, 45),  # 02:15 does not exist on 3 October: 02:45 +11:00
            utc(2027, 10, 9, 15, 15),  # 02:15 +11:00
            utc(2027, 10, 16, 15, 15),
        ],
    }
    sweeper = sweeper_for()
    for sid, instants in expected.items():  # in time order: April, then October
        first, last = instants[0], instants[-1]
        assert status(engine, water, sid, first - timedelta(days=1), 30)["upcoming"] == instants
        assert calendar_instants(engine, water, sid, last, tmp_path) == instants
        sweep_at(sweeper, clock, first - timedelta(days=2))
        sweep_at(sweeper, clock, last + timedelta(days=3))
        assert [o for o, _ in reminders(engine, sid)] == instants
        assert flags(engine, sid) == instants
        assert status(engine, water, sid, last + timedelta(days=3), 0)["overdue"] == instants


def test_lead_days_and_grace_are_counted_in_the_schedules_zone(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any
) -> None:
    # A 7-day reminder across the October change: 09:00 CEST on 26 October,
    # for a meeting at 09:00 CET on 2 November (not 10:00 CEST, as 168 hours would give).
    autumn = add_schedule(
        engine, water, cadence="once", starts_on=date(2027, 11, 2), lead_days="7", grace_days=7
    )
    # Seven days' grace across the March change: until 09:00 CEST on 1 April.
    spring = add_schedule(
        engine, water, cadence="once", starts_on=date(2027, 3, 25), lead_days="", grace_days=7
    )
    sweeper = sweeper_for()
    sweep_at(sweeper, clock, utc(2027, 4, 1, 7) - timedelta(seconds=1))
    assert flags(engine, spring) == []
    sweep_at(sweeper, clock, utc(2027, 4, 1, 7))
    assert flags(engine, spring) == [utc(2027, 3, 25, 8)]
    [flag] = [t for t in fired(engine, "overdue") if t.schedule_id == spring]
    assert flag.due_at.astimezone(UTC) == utc(2027, 4, 1, 7)
    sweep_at(sweeper, clock, utc(2027, 10, 26, 7) - timedelta(seconds=1))
    assert reminders(engine, autumn) == []
    sweep_at(sweeper, clock, utc(2027, 10, 26, 7))
    assert reminders(engine, autumn) == [(utc(2027, 11, 2, 8), utc(2027, 10, 26, 7))]
    [sent] = [t for t in fired(engine, "reminder") if t.schedule_id == autumn]
    assert sent.outcome == "notified" and json.loads(sent.detail)["lead_days"] == 7
