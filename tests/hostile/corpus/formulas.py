"""Text a spreadsheet would run as a formula when the CSV export is opened.

Valid text where free text is allowed: it must be stored as given and exported
neutralised (see tests/audit/test_export.py); it may be refused where it cannot be a name.
"""

from tests.hostile.corpus import case

CASES = [
    case("hyperlink formula", '=HYPERLINK("http://127.0.0.1/x","click")', "text line", refuse=""),
    case("plus command", "+cmd|' /C calc'!A0", "text line", refuse=""),
    case("minus sum", "-2+3+cmd|' /C calc'!A0", "text line", refuse=""),
    case("at sum", "@SUM(1+1)*cmd|' /C calc'!A0", "text line", refuse=""),
    case("tab led", "\t=1+1", "text", refuse=""),
    case("tab led name", "\t=1+1", "line"),
    case("carriage return led", "\r=1+1", "line"),
    case(
        "formula in csv import",
        b'record,text\nobjective,"=HYPERLINK(""http://127.0.0.1"")"\n',
        "import-csv",
        refuse="",
    ),
]
