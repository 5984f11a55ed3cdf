"""Every input surface over the hostile corpus, on SQLite and PostgreSQL.

For each value on each surface it reaches: no traceback and never exit 1;
a refusal is a documented exit code with one line per message on standard
error and leaves the database as it was (row counts of every table, the
chain head, and ``audit verify``); where the corpus says a value must be
refused, it is; where it must be accepted (a UTF-8 BOM), it is. Files that
existed at a path given as a database or an output keep their kind, and a
database path keeps its content.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text

from mspflow.audit.verify import verify_chain
from mspflow.cli import main
from mspflow.cli.base import EXIT_MEANINGS as EXIT_CODES
from mspflow.store import make_engine
from tests.conftest import BACKENDS, Backend, open_backend
from tests.hostile.corpus import Case, cases

P = "water"
PARTNER = "Village Water Network"
SCHEDULE = ("schedule", "add", P, "coordination-meeting", "--cadence", "monthly")

#: The surfaces a kind of input reaches: command lines with ``{}`` for the value
#: (``{n}`` for a fresh number, so names do not clash) or ``{file}`` for a file holding it.
SURFACES: dict[str, list[tuple[str, ...]]] = {
    "text": [
        ("record", "profile", P, "--challenge", "{}"),
        ("waive", P, "case-for-partnering", "--reason", "{}"),
        ("record", "objective", P, "{}"),
        ("scale-up", P, "--decline", "--description", "{}"),
    ],
    "line": [
        ("partnership", "create", "{}"),
        ("partner", "add", P, "{}", "--sector", "public"),
        ("user", "add", "{}", "--role", "partner"),
        ("member", "add", P, "pia", "--partner", "{}"),
        ("schedule", "add", P, "monitoring", "--cadence", "{}", "--start", "2027-03-04"),
        ("partnership", "migrate", P, "--to", "{}", "--dry-run"),
        ("partnership", "migrate", "--all", "--to", "2018.2", "--workflow", "{}", "--dry-run"),
        ("record", "milestone-update", P, "{}", "--done", "2027-03-04"),
        ("channel", "add", "json://127.0.0.1:9/hook", "--label", "{}"),
        ("channel", "add", "{}", "--label", "hook-{n}"),
        ("channel", "test", "{}"),
    ],
    "user": [
        ("user", "add", "{}", "--role", "partner"),
        ("member", "add", P, "{}"),
        ("member", "remove", P, "{}"),
    ],
    "email": [
        ("user", "add", "user-{n}", "--role", "partner", "--email", "{}"),
        ("partner", "add", P, "Org {n}", "--sector", "public", "--email", "{}"),
    ],
    "ref": [
        ("partnership", "show", "{}"),
        ("advance", "{}"),
        ("history", "{}"),
        ("member", "list", "{}"),
        ("partnership", "list", "--after", "{}"),
        ("export", "iati", "{}", "-o", "-"),
    ],
    "slug": [("partnership", "create", "Named {n}", "--id", "{}")],
    "sdg": [
        ("record", "sdg", P, "{}"),
        ("record", "indicator", P, "{}", "--baseline", "1", "--target", "2"),
    ],
    "number": [
        (
            "record",
            "resource",
            P,
            PARTNER,
            "--kind",
            "financial",
            "--description",
            "d",
            "--amount",
            "{}",
        ),
        ("partnership", "list", "--limit", "{}"),
        ("record", "indicator", P, "6.1.1", "--baseline", "{}", "--target", "50"),
    ],
    "days": [(*SCHEDULE, "--start", "2027-03-04", "--grace-days", "{}")],
    "daylist": [(*SCHEDULE, "--start", "2027-03-04", "--lead-days", "{}")],
    "date": [
        ("record", "meeting", P, "--on", "{}", "--minutes", "m"),
        ("record", "milestone", P, "Milestone {n}", "--due", "{}"),
        (*SCHEDULE, "--start", "{}", "--timezone", "Asia/Tokyo"),
    ],
    "time": [(*SCHEDULE, "--start", "2027-03-04", "--at", "{}")],
    "zone": [
        ("partnership", "create", "Zoned {n}", "--timezone", "{}"),
        (*SCHEDULE, "--start", "2027-03-04", "--timezone", "{}"),
    ],
    "db": [("--db", "{}", "partnership", "list"), ("--db", "{}", "audit", "verify")],
    "outdir": [("export", "sdg-progress", "-o", "{}")],
    "output": [
        ("audit", "export", "--format", "csv", "-o", "{}"),
        ("export", "iati", "-o", "{}"),
        ("calendar", "export", "-o", "{}"),
    ],
    "import-yaml": [("import", P, "{file}.yaml")],
    "import-csv": [("import", P, "{file}.csv")],
    "definition": [("workflow", "validate", "{file}.yaml")],
}

_MESSAGE = re.compile(r"(mspflow: |  )\S")


@dataclass
class Portfolio:
    backend: Backend
    url: str
    env: dict[str, str]
    folder: Path
    engine: Engine
    tables: list[str]
    n: int = 0
    #: The snapshot the last case left behind, while nothing has changed since.
    last: dict[str, object] | None = None

    def snapshot(self) -> dict[str, object]:
        """Row counts of every table and the chain head, after ``audit verify`` passed."""
        with self.engine.connect() as conn:
            counts: dict[str, object] = {
                name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in self.tables
            }
            counts["(head)"] = tuple(
                conn.execute(
                    text("SELECT seq, hash FROM history_event ORDER BY seq DESC LIMIT 1")
                ).one()
            )
        verify_chain(self.engine)
        return counts


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args!r} raised {result.exception!r}") from result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module", params=BACKENDS)
def portfolio(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portfolio]:
    folder = tmp_path_factory.mktemp("hostile")
    with open_backend(request, request.param, folder) as backend:
        url = backend.new_url()
        env = {
            "MSPFLOW_DATABASE_URL": url,
            "MSPFLOW_ACTOR": "ana",
            "MSPFLOW_NOW": "2027-01-04T09:00:00Z",
            "MSPFLOW_CONFIG": str(folder / "no-config.toml"),
            "MSPFLOW_IATI_REPORTING_ORG_REF": "XM-DAC-41114",
            "MSPFLOW_IATI_REPORTING_ORG_NAME": "Secretariat",
        }
        for args in (
            ["init", "--admin", "ana", "--email", "ana@example.org"],
            ["user", "add", "pia", "--role", "partner"],
            ["partnership", "create", "Safe water", "--id", P],
            ["partner", "add", P, PARTNER, "--sector", "civil-society", "--can-decide"],
            ["record", "sdg", P, "6.1"],
            [*SCHEDULE, "--start", "2027-03-04", "--at", "09:00"],
        ):
            code, out, err = _run(args, env)
            assert code == 0, (args, out, err)
        engine = make_engine(url)
        tables = sorted(t for t in inspect(engine).get_table_names() if t != "alembic_version")
        try:
            yield Portfolio(backend, url, env, folder, engine, tables)
        finally:
            engine.dispose()


def _special(value: str, folder: Path) -> str:
    """Turn an ``@file:KIND`` placeholder into a path holding such a thing."""
    if not value.startswith("@file:"):
        return value
    kind = value.removeprefix("@file:")
    path = folder / f"special-{kind}"
    if kind == "text" and not path.exists():
        path.write_text("shopping list\n- rice\n", encoding="utf-8")
    elif kind == "corrupt" and not path.exists():
        path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    elif kind == "empty":
        path.touch()
    elif kind == "folder":
        path.mkdir(exist_ok=True)
    elif kind == "link-to-folder" and not path.is_symlink():
        (folder / "linked-folder").mkdir(exist_ok=True)
        path.symlink_to(folder / "linked-folder")
    return str(path)


def _fingerprint(path: str) -> tuple[int, bytes] | None:
    """The kind of file at ``path`` and, for a regular file, its content."""
    try:
        st = os.stat(path) if "\x00" not in path else None
    except OSError:
        return None
    if st is None:
        return None
    content = Path(path).read_bytes() if stat.S_ISREG(st.st_mode) else b""
    return stat.S_IFMT(st.st_mode), content


def _matrix() -> list[object]:
    params = []
    for category, c in cases():
        for kind in sorted(c.kinds):
            for i, surface in enumerate(SURFACES[kind]):
                params.append(pytest.param(c, kind, surface, id=f"{category}:{c.label}:{kind}#{i}"))
    return params


@pytest.mark.parametrize(("case", "kind", "surface"), _matrix())
def test_hostile_input(
    portfolio: Portfolio, case: Case, kind: str, surface: tuple[str, ...]
) -> None:
    portfolio.n += 1
    value = case.value
    args: list[str] = []
    for part in surface:
        if part == "{}":
            assert isinstance(value, str)
            args.append(_special(value, portfolio.folder))
        elif part.startswith("{file}"):
            assert isinstance(value, bytes)
            path = portfolio.folder / f"input-{portfolio.n}{part.removeprefix('{file}')}"
            path.write_bytes(value)
            args.append(str(path))
        else:
            args.append(part.replace("{n}", str(portfolio.n)))
    watched = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--db", "-o")]
    before_files = {p: _fingerprint(p) for p in watched}
    before = portfolio.last or portfolio.snapshot()
    portfolio.last = None

    code, out, err = _run(args, portfolio.env)

    shown = f"{args!r:.300} -> exit {code}\nstdout: {out[:500]}\nstderr: {err[:500]}"
    assert "Traceback" not in out + err, shown
    assert code != 1, shown
    assert code in EXIT_CODES, shown
    for path, print_ in before_files.items():
        after = _fingerprint(path)
        if print_ is not None:
            assert after is not None and after[0] == print_[0], f"{path} changed kind: {shown}"
            if kind == "db":
                assert after == print_, f"{path} was written: {shown}"
    if kind in case.accept:
        assert code == 0, shown
        return
    if kind in case.refuse:
        assert code != 0, f"accepted what must be refused: {shown}"
    if code != 0:
        lines = err.strip("\n").splitlines()
        assert lines, shown
        assert all(_MESSAGE.match(line) for line in lines), shown
        if not kind.startswith(("import", "definition")):
            assert len(lines) == 1, shown
        assert all(len(line) < 1000 for line in lines), shown
        after = portfolio.snapshot()
        assert after == before, f"the database changed: {shown}"
        portfolio.last = after
