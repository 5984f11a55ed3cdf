"""Dates and times that do not exist, or lie outside the span mspflow keeps."""

from tests.hostile.corpus import case

CASES = [
    case("year one", "0001-01-01", "date"),
    case("year 9999", "9999-12-31", "date"),
    case("day before the first date", "1899-12-31", "date"),
    case("day after the last date", "2200-01-01", "date"),
    case("february 30", "2027-02-30", "date"),
    case("month 13", "2027-13-01", "date"),
    case("word", "yesterday", "date time"),
    case("datetime with offset", "2027-01-04T09:00:00+25:00", "date"),
    case("25 o'clock", "25:00", "time"),
    case("seconds", "09:00:60", "time"),
    case("negative time", "-01:00", "time"),
]
