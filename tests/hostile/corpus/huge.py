"""Values far larger than any field keeps."""

from tests.hostile.corpus import case

_KIB = 1024

CASES = [
    case("128 KiB text", "x" * 128 * _KIB, "text line email ref slug zone sdg"),
    case("10 KiB name", "n" * 10 * _KIB, "line email slug ref zone"),
    case("5000-character path", "/tmp/" + "d" * 5000 + ".csv", "output db"),
    case("300-character file name", "/tmp/" + "f" * 300 + ".csv", "output db"),
    case("128 KiB csv cell", b"record,text\nobjective," + b"x" * 128 * _KIB + b"\n", "import-csv"),
    case(
        "128 KiB yaml scalar",
        b"- record: objective\n  text: " + b"y" * 128 * _KIB + b"\n",
        "import-yaml",
    ),
    case("1 MiB csv header", b"record," + b"h" * _KIB * _KIB + b"\nobjective,x\n", "import-csv"),
    case("a million empty rows", b"record,text\n" + b",\n" * 1_000_000, "import-csv"),
    case("digits of a huge number", "9" * 5000, "number days daylist ref"),
]
