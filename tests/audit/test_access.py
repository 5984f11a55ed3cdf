"""Audit commands read through a read-only engine; only auditors and the secretariat run them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mspflow.errors import NotPermitted, StorageError
from mspflow.services import Mspflow
from mspflow.services.context import Context
from tests.audit.conftest import Portfolio


def commands(tmp_path: Path) -> list[list[str]]:
    return [
        ["audit", "log"],
        ["audit", "log", "--json", "-p", "water", "--step", "9"],
        ["audit", "verify"],
        ["audit", "anchor"],
        ["audit", "export", "--format", "csv"],
        ["audit", "export", "--format", "jsonl"],
        ["audit", "export", "--format", "xes", "-o", str(tmp_path / "h.xes")],
        ["audit", "export", "--format", "ocel", "-o", str(tmp_path / "h.ocel.json")],
        ["audit", "conformance"],
    ]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("actor", ["ivo", "ana"])
def test_auditor_and_secretariat_run_every_audit_command(
    portfolio: Portfolio, tmp_path: Path, actor: str
) -> None:
    portfolio.run("audit", "verify")  # settle the WAL file before taking the digest
    before = digest(portfolio.path)
    for argv in commands(tmp_path):
        assert portfolio.run(*argv, actor=actor).output
    assert digest(portfolio.path) == before  # not a byte of the database changed


def test_partners_get_exit_6_from_every_audit_command(portfolio: Portfolio, tmp_path: Path) -> None:
    for argv in commands(tmp_path):
        out = portfolio.run(*argv, actor="pia", code=6).output
        assert "pia (partner) may not run audit commands" in out
    assert not (tmp_path / "h.xes").exists()


def test_an_unknown_actor_gets_exit_4_and_a_missing_one_exit_6(portfolio: Portfolio) -> None:
    for argv in commands(portfolio.path.parent):
        assert "'nobody' is not a user" in portfolio.run(*argv, actor="nobody", code=4).output
    result = portfolio.run("--as", "", "audit", "anchor", actor="", code=6)
    assert "no actor given" in result.output


def test_the_audit_engine_cannot_write(portfolio: Portfolio) -> None:
    ctx = Context(portfolio.url, actor="ivo")
    engine = ctx.read_only_engine()
    try:
        assert ctx.actor.role == "auditor"
        assert Mspflow(context=ctx).audit.anchor().seq > 0
        with pytest.raises(NotPermitted, match="pia"):
            Mspflow(portfolio.url, actor="pia").audit.anchor()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM history_event")).scalar()
            for statement in (
                "INSERT INTO app_user (name, role, created_at) VALUES ('eve', 'secretariat', '')",
                "UPDATE partnership SET state = 'terminated'",
                "DELETE FROM gate_debt",
            ):
                with pytest.raises(OperationalError, match="readonly database"):
                    conn.execute(text(statement))
    finally:
        ctx.close()


def test_auditors_still_cannot_change_anything(portfolio: Portfolio) -> None:
    portfolio.run("advance", "png", actor="ivo", code=6)
    portfolio.run("record", "lesson", "png", "a lesson", actor="ivo", code=6)
    portfolio.run("waive", "png", "resources-mapped", "--reason", "x", actor="ivo", code=6)


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no database"):
        Context(f"sqlite:///{tmp_path / 'absent.db'}", actor="ivo").read_only_engine()
    assert not (tmp_path / "absent.db").exists()
