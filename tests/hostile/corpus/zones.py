"""Time-zone names that are not zones."""

from tests.hostile.corpus import case

CASES = [
    case("a folder of zones", "Europe", "zone"),
    case("the zoneinfo root", ".", "zone"),
    case("parent path", "../../../../etc/passwd", "zone"),
    case("absolute path", "/etc/localtime", "zone"),
    case("unknown city", "Europe/Atlantis", "zone"),
    case("lower case", "europe/berlin", "zone"),
    case("trailing newline", "Europe/Berlin\n", "zone"),
    case("offset", "+05:30", "zone"),
    case("long", "Zone/" + "x" * 300, "zone"),
]
