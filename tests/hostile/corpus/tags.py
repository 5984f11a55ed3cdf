"""Custom YAML tags: object construction, and tags a safe loader does not know."""

from tests.hostile.corpus import case

CASES = [
    case(
        "python object tag",
        b"- record: objective\n  text: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
        "import-yaml definition",
    ),
    case("python name tag", b"- !!python/name:os.system\n", "import-yaml definition"),
    case(
        "unknown local tag", b"- record: objective\n  text: !secret x\n", "import-yaml definition"
    ),
    case("binary tag", b"- record: objective\n  text: !!binary aGVsbG8=\n", "import-yaml"),
    case("set tag", b"- record: objective\n  text: !!set {a, b}\n", "import-yaml"),
    case(
        "timestamp tag",
        b"- record: meeting\n  on: !!timestamp 2027-01-04T09:00:00Z\n",
        "import-yaml",
    ),
    case(
        "tag directive",
        b"%TAG !e! tag:example.org,2002:\n---\n- !e!thing x\n",
        "import-yaml definition",
    ),
]
