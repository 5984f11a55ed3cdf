"""The audit commands on a real PostgreSQL server: the same portfolio, the same answers.

The SQLite tests next to this file cover every case in depth; here each command
runs once against PostgreSQL, and the history is tampered with as someone with
the database owner's rights would (dropping the append-only trigger first).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import create_engine, text

from mspflow.services.context import Context
from tests.audit.conftest import build
from tests.conftest import invoke, open_backend

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_portfolio(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with open_backend(request, "postgresql", tmp_path_factory.mktemp("pg-audit")) as backend:
        url = backend.new_url()
        build(url)
        yield url


def run(url: str, *args: str, code: int = 0, actor: str = "ivo") -> Result:
    result = invoke(*args, env={"MSPFLOW_DATABASE_URL": url, "MSPFLOW_ACTOR": actor})
    assert result.exit_code == code, (args, result.output)
    return result


def sql(url: str, *statements: str, params: dict[str, Any] | None = None) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params or {})
    finally:
        engine.dispose()


def test_every_audit_command_answers_on_postgresql(pg_portfolio: str, tmp_path: Path) -> None:
    import pm4py

    url = pg_portfolio
    anchor = run(url, "audit", "anchor").output.strip()
    assert "matches anchor" in run(url, "audit", "verify", "--anchor", anchor).output
    log = json.loads(run(url, "audit", "log", "--json", "--partnership", "water").output)
    assert log and {e["partnership"] for e in log} == {"water"}
    assert any(e["actor"] == "scheduler" for e in log)
    assert "conform" in run(url, "audit", "conformance").output
    xes, ocel = tmp_path / "h.xes", tmp_path / "h.ocel.json"
    run(url, "audit", "export", "--format", "xes", "--output", str(xes))
    run(url, "audit", "export", "--format", "ocel", "--output", str(ocel))
    events = len(json.loads(run(url, "audit", "log", "--json").output))
    assert len(pm4py.read_xes(str(xes))) == events
    assert len(pm4py.read_ocel2_json(str(ocel)).events) == events
    run(url, "audit", "verify", code=6, actor="pia")  # partners may not audit


def test_the_read_only_engine_refuses_writes_on_postgresql(pg_portfolio: str) -> None:
    from sqlalchemy.exc import DBAPIError

    ctx = Context(pg_portfolio, actor="ivo")
    engine = ctx.read_only_engine()
    try:
        with pytest.raises(DBAPIError, match="read-only transaction"), engine.begin() as conn:
            conn.execute(text("UPDATE partnership SET name = 'x'"))
    finally:
        ctx.close()


def test_tampering_on_postgresql_is_found(
    request: pytest.FixtureRequest, pg_portfolio: str, tmp_path: Path
) -> None:
    with open_backend(request, "postgresql", tmp_path) as backend:
        url = backend.copy(pg_portfolio)
        anchor = run(url, "audit", "anchor").output.strip()
        with pytest.raises(Exception, match="append-only"):
            sql(url, "UPDATE history_event SET reason = 'changed' WHERE seq = 5")
        sql(
            url,
            "DROP TRIGGER history_event_append_only ON history_event",
            "UPDATE history_event SET reason = 'changed' WHERE seq = 5",
        )
        line = run(url, "audit", "verify", code=8).output
        assert "event 5" in line and "edited" in line
        run(url, "audit", "verify", "--anchor", anchor, code=8)
