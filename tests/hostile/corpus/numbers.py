"""Numbers out of every column's range, and text that is not a number."""

from tests.hostile.corpus import case

CASES = [
    case("twelve nines", "999999999999", "days daylist number ref"),
    case("ten years of days", "3650000", "days daylist"),
    case("2**31", "2147483648", "days daylist ref"),
    case("2**63", "9223372036854775808", "days daylist number ref"),
    case("negative days", "-1", "days daylist"),
    case("1e309 overflows a double", "1e309", "number days"),
    case("infinity", "inf", "number days"),
    case("not a number", "nan", "number days"),
    case("hex", "0x10", "number days daylist"),
    case("arabic-indic digits", "\u0661\u0662", "days daylist"),
    case("float days", "1.5", "days daylist"),
    case("words", "seven", "number days daylist"),
    case("empty list item", "7,,1", "daylist"),
    case("many lead days", ",".join(str(i) for i in range(500)), "daylist"),
    case("1e20 amount", "1e20", "number"),
    # A whole number Python reads, far beyond any column: the message quotes it cut short.
    case("a thousand digits", "9" * 1000, "number days daylist ref"),
]
