"""Files in encodings other than UTF-8, and bytes that decode to nothing."""

from tests.hostile.corpus import case

_CSV = "record,name,sector\npartner,Société d'eau,civil-society\n"
_YAML = "- record: partner\n  name: Société d'eau\n  sector: civil-society\n"

CASES = [
    case("latin-1 csv", _CSV.encode("latin-1"), "import-csv"),
    case("utf-16 csv", _CSV.encode("utf-16"), "import-csv"),
    case("utf-16-le yaml without bom", _YAML.encode("utf-16-le"), "import-yaml definition"),
    case("utf-32 yaml", _YAML.encode("utf-32"), "import-yaml definition"),
    case("cp1252 yaml", _YAML.replace("é", "\u201c").encode("cp1252"), "import-yaml"),
    case("invalid utf-8 bytes", b"- record: objective\n  text: \xff\xfe\xc3\x28\n", "import-yaml"),
    case("truncated utf-8 sequence", b"record,text\nobjective,caf\xc3\n", "import-csv"),
    case("utf-8 overlong slash", b"record,text\nobjective,\xc0\xaf\n", "import-csv"),
    case("binary file", bytes(range(256)) * 8, "import-csv import-yaml definition"),
    case("gzip header", b"\x1f\x8b\x08\x00" + b"\x00" * 60, "import-yaml import-csv"),
]
