"""A UTF-8 byte-order mark: spreadsheet programs write one; it must not break the first column."""

from tests.hostile.corpus import case

_BOM = b"\xef\xbb\xbf"

CASES = [
    case(
        "bom csv",
        _BOM + b"record,text\nobjective,Safe water for every household\n",
        "import-csv",
        refuse="",
        accept="import-csv",
    ),
    case(
        "bom csv old kind column",
        _BOM + b"kind,text\nobjective,Fewer outbreaks of water-borne disease\n",
        "import-csv",
        refuse="",
        accept="import-csv",
    ),
    case(
        "bom yaml",
        _BOM + b"- record: objective\n  text: Clean wells in every village\n",
        "import-yaml",
        refuse="",
        accept="import-yaml",
    ),
    case("bom in the middle", b"record,text\nobjective,\xef\xbb\xbfx\n", "import-csv", refuse=""),
    case("two boms", _BOM + _BOM + b"record,text\nobjective,x\n", "import-csv"),
]
