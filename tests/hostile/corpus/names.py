"""Line breaks and control characters where a name, a reference or an address is expected."""

from tests.hostile.corpus import case

CASES = [
    case("newline in a name", "Safe water\nBcc: everyone@example.org", "line email slug ref"),
    case("crlf in an address", "ana@example.org\r\nBcc: x@example.org", "email"),
    case("cr alone", "Safe water\rX", "line email"),
    case("unicode line separator", "Safe\u2028water", "line email"),
    case("paragraph separator", "Safe\u2029water", "line"),
    case("next line (C1)", "Safe\x85water", "line email"),
    case("vertical tab", "Safe\x0bwater", "line email"),
    case("escape sequence", "Safe \x1b[31mwater\x1b[0m", "line email"),
    case("bell", "Safe\x07water", "line"),
    case("not an address", "ana at example dot org", "email"),
    case("two addresses", "a@example.org, b@example.org", "email"),
    case("display name", "Ana <ana@example.org>", "email"),
    case("address without domain", "ana@", "email"),
    case("right-to-left override", "water\u202egnp.exe", "line", refuse=""),
    case("emoji and combining marks", "Wa\u0301ter \U0001f4a7 for all", "line text", refuse=""),
    case("slug with capitals and spaces", "Safe Water", "slug"),
    case("slug all digits", "12345", "slug"),
    case("scheduler as a user", "scheduler", "user"),
    case("reference with slash", "../../etc/passwd", "ref"),
    case("sql in a reference", "water' OR '1'='1", "ref"),
    case("23-digit reference", "12345678901234567890123", "ref"),
    case("negative reference", "-1", "ref"),
]
