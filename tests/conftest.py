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


# --------------------------------------------------------------------------- stores

from collections.abc import Iterator  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from sqlalchemy import Engine  # noqa: E402

from mspflow.auth import Actor  # noqa: E402
from mspflow.clock import ManualClock  # noqa: E402
from mspflow.definition import Workflow, find_workflow  # noqa: E402
from mspflow.engine import PartnershipService  # noqa: E402
from mspflow.store import create_schema, make_engine  # noqa: E402
from mspflow.users import add_user  # noqa: E402

BACKENDS = ["sqlite"]
SECRETARIAT = Actor("ana", "secretariat")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2027, 1, 4, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def engine(db_url: str, clock: ManualClock) -> Iterator[Engine]:
    engine = make_engine(db_url, create_dirs=True)
    create_schema(engine)
    add_user(engine, clock, None, "ana", "secretariat", "ana@example.org", first=True)
    add_user(engine, clock, SECRETARIAT, "ivo", "auditor", None)
    add_user(engine, clock, SECRETARIAT, "pia", "partner", None)
    yield engine
    engine.dispose()


@pytest.fixture
def service(engine: Engine, clock: ManualClock) -> PartnershipService:
    return PartnershipService(engine, clock)


@pytest.fixture(scope="session")
def msp() -> Workflow:
    return find_workflow("msp-12-step")


@pytest.fixture(scope="session")
def msp_text(msp: Workflow) -> str:
    return Path(msp.source).read_text(encoding="utf-8")
