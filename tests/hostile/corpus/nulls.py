"""NUL characters, YAML nulls and empty values."""

from tests.hostile.corpus import case

CASES = [
    case("nul in text", "minutes\x00of the meeting", "text line email ref slug zone date"),
    case("only nul", "\x00", "text line email ref slug zone date number days"),
    case("nul in path", "audit\x00.csv", "output db"),
    case("yaml null for a required field", b"- record: objective\n  text: null\n", "import-yaml"),
    case("yaml tilde required", b"- record: objective\n  text: ~\n", "import-yaml"),
    case(
        "yaml null for an optional field",
        b"- record: partner\n  name: Null Org\n  sector: public\n  contact: null\n",
        "import-yaml",
        refuse="",
    ),
    case("yaml null record kind", b"- record: null\n  text: x\n", "import-yaml"),
    case("nul byte in yaml", b"- record: objective\n  text: a\x00b\n", "import-yaml"),
    case("nul byte in csv", b"record,text\nobjective,a\x00b\n", "import-csv"),
    case("nul byte in definition", b"name: x\x00y\n", "definition"),
    case("empty yaml file", b"", "import-yaml definition"),
    case("yaml that is null", b"null\n", "import-yaml definition"),
    case("empty csv file", b"", "import-csv"),
    case("header-only csv", b"record,text\n", "import-csv"),
    case(
        "empty string", "", "line email ref slug zone date number days daylist time sdg db output"
    ),
    case("blank", "   ", "line email ref slug zone date number days time sdg"),
]
