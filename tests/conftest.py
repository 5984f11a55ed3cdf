"""Shared fixtures: paths and a CLI runner that fails loudly on tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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

import os  # noqa: E402
import sqlite3  # noqa: E402
from collections.abc import Iterator, Mapping  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from sqlalchemy import Engine  # noqa: E402

from mspflow.auth import Actor  # noqa: E402
from mspflow.clock import ManualClock  # noqa: E402
from mspflow.definition import Workflow, find_workflow  # noqa: E402
from mspflow.services import Mspflow  # noqa: E402
from mspflow.services.users import add_first_user  # noqa: E402
from mspflow.store import check_schema, create_schema, make_engine  # noqa: E402
from tests.support.figures import FIGURES  # noqa: E402
from tests.support.pgserver import PgServer, PgUnavailable, name_of  # noqa: E402

SECRETARIAT = Actor("ana", "secretariat")

#: Every store contract, CLI and scheduler test runs once per backend. The
#: PostgreSQL runs are marked ``postgres`` (deselect with ``-m "not postgres"``).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


_PG: dict[str, Any] = {}


def _pg() -> PgServer:
    """The session's PostgreSQL server, started on first use (or why it cannot start)."""
    if "error" in _PG:
        raise PgUnavailable(_PG["error"])
    if "server" not in _PG:
        server: PgServer | None = None
        try:
            server = PgServer()
            server.start()
        except PgUnavailable as exc:
            if server is not None:
                server.stop()
            _PG["error"] = str(exc)
            raise
        _PG["server"] = server
    server = _PG["server"]
    assert isinstance(server, PgServer)
    return server


#: Values of ``CI`` that say "not under CI" (compared without case or spaces).
_NOT_CI = frozenset({"", "0", "false", "no", "off"})


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the run is CI's: ``CI`` set to anything but empty, 0, false, no or off."""
    return environ.get("CI", "").strip().lower() not in _NOT_CI


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``postgres`` skip, with one reason for all of them, where no
    server can start; under CI (see :func:`under_ci`) they fail."""
    if item.get_closest_marker("postgres") is None:
        return
    try:
        _pg()
    except PgUnavailable as exc:
        if under_ci():
            pytest.fail(f"PostgreSQL tests cannot run under CI: {exc}", pytrace=False)
        raise pytest.skip.Exception(f"PostgreSQL server unavailable: {exc}") from None


def pytest_sessionfinish() -> None:
    server = _PG.pop("server", None)
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    """The session's PostgreSQL server (tests using it must be marked ``postgres``)."""
    try:
        return _pg()
    except PgUnavailable as exc:
        pytest.fail(f"the test needs PostgreSQL but is not marked 'postgres': {exc}")


@pytest.fixture(scope="session")
def schema_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("schema")


#: Per backend, one database the migrations ran on, copied wherever a test needs
#: the schema: a copy takes milliseconds, running the migrations a large part of
#: a second on PostgreSQL. (test_migrations runs them for real.)
_TEMPLATES: dict[tuple[str, int], str] = {}


class Backend:
    """Fresh databases of one kind for one test (or module), removed afterwards."""

    def __init__(
        self, name: str, folder: Path, server: PgServer | None = None, *, schema_folder: Path
    ) -> None:
        self.name = name
        self.folder = folder
        self.server = server
        self.schema_folder = schema_folder
        self._made: list[str] = []
        self._n = 0

    def _template(self) -> str:
        key = (self.name, self.server.port if self.server else 0)
        if key not in _TEMPLATES:
            if self.server is None:
                url = f"sqlite:///{self.schema_folder / 'template.db'}"
            else:
                url = self.server.url(self.server.create_database())
            engine = make_engine(url, create_dirs=True)
            create_schema(engine)
            engine.dispose()
            _TEMPLATES[key] = url
        return _TEMPLATES[key]

    def with_schema(self, url: str) -> None:
        """Turn the empty database ``url`` into one at the newest schema."""
        template = self._template()
        if self.server is None:
            _sqlite_copy(template, url)
            return
        name = name_of(url)
        self.server.drop_database(name)
        self.server.create_database(template=name_of(template), name=name)

    def new_url(self) -> str:
        """A new, empty database."""
        if self.server is None:
            self._n += 1
            return f"sqlite:///{self.folder / f'store-{self._n}.db'}"
        name = self.server.create_database()
        self._made.append(name)
        return self.server.url(name)

    def copy(self, url: str) -> str:
        """A new database holding what ``url`` holds now (nobody may be connected to it)."""
        if self.server is None:
            target = self.new_url()
            _sqlite_copy(url, target)
            return target
        name = self.server.create_database(template=name_of(url))
        self._made.append(name)
        return self.server.url(name)

    def drop(self, url: str) -> None:
        if self.server is None:
            path = url.removeprefix("sqlite:///")
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
            return
        name = name_of(url)
        self.server.drop_database(name)
        if name in self._made:
            self._made.remove(name)

    def close(self) -> None:
        for name in self._made:
            assert self.server is not None
            self.server.drop_database(name)
        self._made.clear()


def _sqlite_copy(source_url: str, target_url: str) -> None:
    source = sqlite3.connect(source_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(target_url.removeprefix("sqlite:///"))
    with target:
        source.backup(target)
    source.close()
    target.close()


@contextmanager
def open_backend(request: pytest.FixtureRequest, name: str, folder: Path) -> Iterator[Backend]:
    server = request.getfixturevalue("pg_server") if name == "postgresql" else None
    backend = Backend(name, folder, server, schema_folder=request.getfixturevalue("schema_folder"))
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with open_backend(request, request.param, tmp_path) as found:
        yield found


@pytest.fixture
def db_url(backend: Backend) -> str:
    """A fresh, empty database URL on each backend."""
    return backend.new_url()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2027, 1, 4, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def engine(backend: Backend, db_url: str, clock: ManualClock) -> Iterator[Engine]:
    """``db_url`` at the newest schema, with users ana (secretariat), ivo and pia."""
    backend.with_schema(db_url)
    engine = make_engine(db_url)
    check_schema(engine)
    add_first_user(engine, clock.now(), "ana", "ana@example.org")
    Mspflow(engine=engine, clock=clock, actor=SECRETARIAT).users.add(
        name="ivo", role="auditor", email=None
    )
    Mspflow(engine=engine, clock=clock, actor=SECRETARIAT).users.add(
        name="pia", role="partner", email=None
    )
    yield engine
    engine.dispose()


@pytest.fixture
def service(engine: Engine, clock: ManualClock) -> Mspflow:
    return Mspflow(engine=engine, clock=clock, actor=SECRETARIAT)


@pytest.fixture(scope="session")
def msp() -> Workflow:
    return find_workflow("msp-12-step")


@pytest.fixture(scope="session")
def msp_text(msp: Workflow) -> str:
    return Path(msp.source).read_text(encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Figures the concurrency and fault tests measured, printed with or without ``-s``."""
    if FIGURES:
        terminalreporter.section("mspflow figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
