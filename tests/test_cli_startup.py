"""`mspflow --help` stays fast: the command modules defer their heavy imports."""

from __future__ import annotations

import subprocess
import sys

from mspflow.cli import RECORD_KINDS
from mspflow.evidence import RECORDS

HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "transitions",
    "apscheduler",
    "yaml",
    "icalendar",
    "mspflow.evidence",
)


def test_help_imports_no_database_or_engine_module() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from mspflow.cli import main\n"
        "CliRunner().invoke(main, ['--help'])\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_lazy_record_commands_are_every_kind_of_evidence() -> None:
    assert list(RECORD_KINDS) == list(RECORDS)
