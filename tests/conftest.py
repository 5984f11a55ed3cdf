"""Shared fixtures: paths and a CLI runner that fails loudly on tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mspflow.cli import main

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
BUNDLED = sorted(WORKFLOWS.glob("*.yaml"))


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """Run the CLI in-process; a Python traceback in its output is always a failure."""
    result = CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=True)
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def cli() -> Callable[..., Result]:
    return invoke
