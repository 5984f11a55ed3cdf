"""The rules every value from outside must pass, each owned by one function.

Values reach mspflow from the command line, from bulk files and (later) from
forms and an API. Each rule lives here once and is applied at the boundary of
the operation that receives the value; a value that breaks it raises
:class:`~mspflow.errors.InvalidInput` naming the field, before anything is
written. Why the limits:

- text never holds NUL (PostgreSQL refuses it; SQLite would store it and the
  exports would carry it on), and text that can reach an email header or a
  subject (names, references, addresses) holds no line breaks at all;
- lengths are bounded so that one value cannot fill a page, a log line or a
  cell of an export;
- whole numbers fit a 32-bit column on every backend, day counts stay within a
  span the scheduler can compute dates for, dates within :data:`FIRST_DATE` ..
  :data:`LAST_DATE`;
- time zones are IANA names that resolve to a zone file.

Messages quote the offending value through :func:`shown`, which escapes
control characters and shortens long values, so that an error stays one line.
"""

from __future__ import annotations

import math
import re
from datetime import date
from functools import lru_cache

from mspflow.errors import InvalidInput

__all__ = [
    "EMAIL_MAX",
    "FIRST_DATE",
    "INT_MAX",
    "LAST_DATE",
    "MAX_DAYS",
    "NAME_MAX",
    "TEXT_MAX",
    "day_count",
    "email",
    "escaped",
    "in_date_range",
    "line",
    "number",
    "shown",
    "text",
    "whole",
    "zone",
]

#: The span of dates mspflow accepts anywhere (records, schedules, scopes).
FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(2199, 12, 31)
#: The largest whole number a column holds on every backend (32-bit signed).
INT_MAX = 2_147_483_647
#: Day counts (reminder lead days, grace periods): at most ten years.
MAX_DAYS = 3_660
#: Names, references, titles: one line of at most this many characters.
NAME_MAX = 200
#: Free text (minutes, findings, descriptions): at most this many characters.
TEXT_MAX = 20_000
#: RFC 5321 limits a forward path to 256 octets, an address to 254 of them.
EMAIL_MAX = 254

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


def escaped(text: str) -> str:
    """``text`` with every line break and control character written as an escape
    (``\\n``, ``\\x00``), so that it stays on one line wherever it is printed."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def shown(value: object, limit: int = 60) -> str:
    """``value`` quoted for a one-line message: control characters escaped, long values cut."""
    out = escaped(str(value))
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return f"'{out}'"


def _invalid(field: str, message: str, hint: str | None = None) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", hint=hint, field=field)


def text(value: str, *, field: str, limit: int = TEXT_MAX, required: bool = False) -> str:
    """Free text: no NUL, at most ``limit`` characters (line breaks allowed)."""
    if "\x00" in value:
        raise _invalid(field, "contains a NUL character", "remove it; text cannot hold NUL")
    if len(value) > limit:
        raise _invalid(
            field, f"is {len(value):,} characters long; at most {limit:,} are kept", "shorten it"
        )
    if required and not value.strip():
        raise _invalid(field, "is empty", "give a value")
    return value


def line(value: str, *, field: str, limit: int = NAME_MAX, required: bool = True) -> str:
    """One line of text (a name, a title, a reference): no line breaks, no control characters
    (a tab neither: it ends a cell where the line is exported, and leads a formula there)."""
    text(value, field=field, limit=limit, required=required)
    if _LINE_BREAKS.search(value) or _CONTROL.search(value):
        raise _invalid(
            field,
            f"{shown(value)} contains a line break or control character",
            "write it on one line",
        )
    return value.strip()


def email(value: str, *, field: str = "email") -> str:
    """One email address (``name@domain``), without a display name or line breaks."""
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    value = line(value, field=field, limit=EMAIL_MAX)
    try:
        address = Address(addr_spec=value)
    except (HeaderParseError, ValueError, IndexError, TypeError):
        address = None
    if address is None or not address.username or "." not in address.domain:
        raise _invalid(
            field, f"{shown(value)} is not an email address", "write it as name@example.org"
        )
    return str(address.addr_spec)


def whole(value: object, *, field: str, low: int = -INT_MAX - 1, high: int = INT_MAX) -> int:
    """A whole number within ``low`` .. ``high`` (by default a 32-bit column's range)."""
    if isinstance(value, bool):
        raise _invalid(field, f"{shown(value)} is not a whole number")
    if isinstance(value, int):
        n = value
    else:
        raw = str(value).strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,19}", raw):
            raise _invalid(field, f"{shown(raw)} is not a whole number", "write digits only")
        n = int(raw)
    if not low <= n <= high:
        raise _invalid(
            field, f"{shown(n)} is out of range", f"use a whole number from {low} to {high}"
        )
    return n


def day_count(value: object, *, field: str, high: int = MAX_DAYS) -> int:
    """A number of days, 0 .. ``high``."""
    return whole(value, field=field, low=0, high=high)


def number(value: object, *, field: str, limit: float = 1e15) -> float:
    """A finite decimal number of magnitude at most ``limit`` (an amount, an indicator value)."""
    if isinstance(value, bool):
        raise _invalid(field, f"{shown(value)} is not a number")
    try:
        x = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except ValueError:
        raise _invalid(field, f"{shown(value)} is not a number", "write it like 1250.50") from None
    if not math.isfinite(x) or abs(x) > limit:
        raise _invalid(field, f"{shown(value)} is out of range", f"use a number within ±{limit:g}")
    return x


def in_date_range(value: date, *, field: str) -> date:
    """``value`` if it lies within :data:`FIRST_DATE` .. :data:`LAST_DATE`."""
    if not FIRST_DATE <= value <= LAST_DATE:
        raise _invalid(
            field,
            f"{value.isoformat()} is outside the dates mspflow keeps",
            f"use a date from {FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}",
        )
    return value


@lru_cache(maxsize=512)
def _zone_ok(name: str) -> bool:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception:  # not found, a folder, a bad path: all "unknown"
        return False
    return True


def zone(value: str, *, field: str = "timezone") -> str:
    """An IANA time zone name that resolves (``Asia/Bangkok``, ``UTC``)."""
    name = value.strip(" ")
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name) or not _zone_ok(name):
        raise _invalid(
            field, f"unknown time zone {shown(value)}", "use an IANA name such as Asia/Bangkok"
        )
    return name
