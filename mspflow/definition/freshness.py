"""How recent a gate criterion's evidence must be.

A criterion may ask for evidence recorded

- ``since: visit``: after the partnership entered this visit of the step (a
  revisit, or another pass round a loop, needs new records);
- ``since: cycle``: after the partnership last entered the step the
  definition names as its ``cycle_start`` (the implementation loop's first
  step), so a record made anywhere in this pass round the loop counts;
- ``within: <ISO 8601 duration>``: no longer ago than that (``P3M``, ``P90D``,
  ``P1Y``, ``P2W``, ``PT12H``);

or, by default, ``ever``: foundational records (the profile, the signed
agreement) stay valid however old. ``since`` and ``within`` may be combined:
both must hold.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CHECKS_WITH_FRESHNESS", "SINCE", "Duration", "parse_duration"]

#: The values ``since`` takes.
SINCE = ("visit", "cycle")
#: The built-in checks that read when a record was made, so that freshness applies.
CHECKS_WITH_FRESHNESS = ("records_at_least", "each_partner_has", "fields_recorded", "attested")

_DURATION = re.compile(
    r"P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?"
)


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration: calendar months (years are twelve) and an exact rest."""

    months: int
    rest: timedelta
    text: str

    def before(self, instant: datetime) -> datetime:
        """``instant`` moved back by the duration: months on the calendar (the 31st of a
        month without one falls on its last day), then the rest exactly."""
        year, month = divmod(instant.year * 12 + instant.month - 1 - self.months, 12)
        day = min(instant.day, calendar.monthrange(year, month + 1)[1])
        return instant.replace(year=year, month=month + 1, day=day) - self.rest

    def __str__(self) -> str:
        return self.text


def parse_duration(text: str) -> Duration:
    """``P3M``, ``P1Y6M``, ``P90D``, ``P2W``, ``PT12H``; ValueError for anything else."""
    found = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P3M or P90D")
    y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in found.groups())
    rest = timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)
    months = y * 12 + mo
    if months == 0 and rest == timedelta(0):
        raise ValueError(f"{text!r} is a duration of nothing")
    if months > 12 * 200 or rest > timedelta(days=366 * 200):
        raise ValueError(f"{text!r} is longer than two centuries")
    return Duration(months, rest, text.strip())
