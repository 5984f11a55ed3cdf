"""`mspflow --help` stays fast: the command modules defer their heavy imports."""

from __future__ import annotations

import subprocess
import sys

from mspflow.cli import main
from mspflow.services.evidence import RECORDS

HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "transitions",
    "apscheduler",
    "yaml",
    "icalendar",
    "mspflow.store",
    "mspflow.services.context",
    "mspflow.services.evidence",
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
    group = main.get_command(None, "record")  # type: ignore[arg-type]
    lazy = getattr(group, "lazy", {})
    assert list(lazy) == list(RECORDS)


def test_cli_py_runs_the_command_line_from_a_checkout() -> None:
    """``python cli.py --help`` at the top of the checkout, as the layout promises."""
    from tests.conftest import REPO

    out = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Usage: mspflow" in out.stdout and "partnership" in out.stdout
