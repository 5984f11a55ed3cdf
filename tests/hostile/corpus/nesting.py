"""Deep nesting, and structure where a value is expected."""

from tests.hostile.corpus import case

_DEEP = 5_000

CASES = [
    case(
        "5000 nested flow lists",
        b"- " + b"[" * _DEEP + b"]" * _DEEP + b"\n",
        "import-yaml definition",
    ),
    case(
        "5000 nested flow mappings",
        b"- " + b"{a: " * _DEEP + b"1" + b"}" * _DEEP + b"\n",
        "import-yaml definition",
    ),
    case(
        "5000 nested block lists",
        b"".join(b"  " * i + b"-\n" for i in range(200)) + b"  " * 200 + b"- x\n",
        "import-yaml definition",
    ),
    case("a list where text is expected", b"- record: objective\n  text: [a, b]\n", "import-yaml"),
    case(
        "a mapping where text is expected", b"- record: objective\n  text: {a: b}\n", "import-yaml"
    ),
    case(
        "a mapping where a date is expected",
        b"- record: meeting\n  on: {y: 2027}\n  minutes: m\n",
        "import-yaml",
    ),
    case("a scalar instead of a list", b"record: objective\ntext: x\n", "import-yaml"),
    case("a list of lists", b"- [objective, x]\n", "import-yaml"),
    case("extra csv column", b"record,text,colour\nobjective,x,blue\n", "import-csv"),
    case("more cells than headers", b"record,text\nobjective,x,y,z\n", "import-csv"),
    case(
        "unknown field in yaml", b"- record: objective\n  text: x\n  colour: blue\n", "import-yaml"
    ),
    case("unknown record kind", b"- record: horoscope\n  text: x\n", "import-yaml"),
    case("ambiguous old kind column", b"- kind: progress\n  summary: s\n", "import-yaml"),
]
