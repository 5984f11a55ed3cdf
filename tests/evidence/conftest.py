"""Partnerships for the evidence tests, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import Engine, func
from sqlmodel import select

from mspflow.definition import Workflow
from mspflow.services import Mspflow
from mspflow.services.evidence import RECORDS
from mspflow.store import models as m
from mspflow.store import read_session
from tests.conftest import invoke

#: The evidence tables a write may touch, and the partnership row (its version).
TABLES = sorted(
    {m.evidence_table(kind) for kind in RECORDS}
    | {m.ComponentObjective, m.MeetingAttendance, m.Partnership},
    key=lambda model: model.__name__,
)


def counts(engine: Engine) -> dict[str, int]:
    """Rows per evidence table, and the sum of partnership versions: what a refused write
    must leave exactly as it was."""
    with read_session(engine) as s:
        out = {
            model.__name__: s.exec(select(func.count()).select_from(model)).one()
            for model in TABLES
        }
        out["versions"] = s.exec(select(func.sum(m.Partnership.version))).one() or 0
    return out


@pytest.fixture
def water(service: Mspflow, msp: Workflow, msp_text: str) -> str:
    """A partnership in Phnom Penh's zone, with nothing recorded yet."""
    return service.partnerships.create(
        name="Safe water",
        workflow=msp,
        definition_text=msp_text,
        slug="water",
        timezone="Asia/Phnom_Penh",
    ).id


@pytest.fixture
def env(db_url: str, water: str) -> dict[str, str]:
    """The CLI's environment for the database (either backend) holding ``water``."""
    return {
        "MSPFLOW_DATABASE_URL": db_url,
        "MSPFLOW_ACTOR": "ana",
        "MSPFLOW_NOW": "2027-01-04T09:00:00Z",
    }


Run = Callable[..., Result]


@pytest.fixture
def run(env: dict[str, str]) -> Run:
    """``run(*args, code=N)``: the CLI's result, after checking its exit code."""

    def run_(*args: str | Path, code: int = 0) -> Result:
        result = invoke(*(str(a) for a in args), env=env)
        assert result.exit_code == code, (args, result.output)
        return result

    return run_


def one_line(result: Result) -> str:
    """The one error line of a refused command (never a traceback, never more lines)."""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("mspflow: "), lines
    assert "internal error" not in lines[0]
    return lines[0]
