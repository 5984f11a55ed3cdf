"""Database URLs and paths that are not a usable mspflow database."""

from tests.hostile.corpus import case

# "@file:" values are replaced by the runner with a file it makes of that kind.
CASES = [
    case("in-memory sqlite", "sqlite://", "db"),
    case("explicit memory", "sqlite:///:memory:", "db"),
    case("unknown scheme", "mysql://root@127.0.0.1/msp", "db"),
    case("not a url", "postgresql+psycopg://", "db"),
    case("closed port", "postgresql+psycopg://mspflow:secret@127.0.0.1:9/msp", "db"),
    case("missing folder", "/nonexistent/folder/msp.db", "db"),
    case("a text file", "@file:text", "db"),
    case("a corrupt database", "@file:corrupt", "db"),
    case("a folder", "@file:folder", "db"),
    case("a device", "/dev/null", "db"),
    case("an empty file", "@file:empty", "db"),
]
