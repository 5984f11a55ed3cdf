"""The secretariat CLI: exit codes, one-line errors, stable --json keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from mspflow.store import make_engine, write_session
from mspflow.store.models import SCHEMA_VERSION
from tests.conftest import invoke


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    env = {
        "MSPFLOW_DATABASE_URL": db_url,
        "MSPFLOW_ACTOR": "ana",
        "MSPFLOW_NOW": "2027-01-04T09:00:00Z",
    }
    assert invoke("init", "--admin", "ana", env=env).exit_code == 0
    assert invoke("user", "add", "ivo", "--role", "auditor", env=env).exit_code == 0
    assert invoke("partnership", "create", "Safe water", "--id", "water", env=env).exit_code == 0
    return env


def run(env: dict[str, str], *args: str, code: int = 0, actor: str | None = None) -> str:
    if actor is not None:
        env = {**env, "MSPFLOW_ACTOR": actor}
    result = invoke(*args, env=env)
    assert result.exit_code == code, (args, result.output)
    return result.output


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("mspflow: ")
    return lines[0]


def test_show_json_has_the_documented_keys(env: dict[str, str]) -> None:
    data = json.loads(run(env, "partnership", "show", "water", "--json"))
    for key in (
        "id",
        "name",
        "workflow",
        "step",
        "module",
        "status",
        "unmet_criteria",
        "criteria",
        "version",
        "gate_debt_open",
        "moves",
        "partners",
    ):
        assert key in data
    assert data["step"] == {"number": 1, "id": "getting-started", "name": "Getting started"}
    assert data["module"]["id"] == "A" and data["status"] == "active"
    unmet = {c["criterion"]: c["task"] for c in data["unmet_criteria"]}
    assert unmet["partner-identified"] == "1.4" and len(unmet) == 5
    listing = json.loads(run(env, "partnership", "list", "--json"))
    assert [p["id"] for p in listing] == ["water"]


def test_show_text_names_tasks_and_fixes(env: dict[str, str]) -> None:
    out = run(env, "partnership", "show", "water")
    assert "step 1 Getting started (module A Initiation)" in out
    assert "task 1.4 a potential partner identified" in out
    assert "add a partner with a named contact who can commit the organization" in out


def test_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    out = run(env, "advance", "water", code=3)
    assert out.splitlines()[0].startswith("mspflow: partnership water: cannot leave step 1")
    assert "  task 1.1 [challenge-framed]" in out
    assert "no partnership 'nope'" in one_line(run(env, "advance", "nope", code=4))
    assert "may not move" in one_line(run(env, "advance", "water", code=6, actor="ivo"))
    assert "not a user" in one_line(run(env, "advance", "water", code=4, actor="zed"))
    assert "SDG target" in one_line(run(env, "record", "sdg", "water", "6.99", code=7))
    stale = one_line(run(env, "advance", "water", "--expect-version", "99", code=5))
    assert "is at version 1, not 99" in stale
    run(env, "revisit", "water", code=2)  # click: missing argument
    missing = {**env, "MSPFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    assert "mspflow init" in one_line(run(missing, "partnership", "list", code=9))


def test_bad_date_is_one_line(env: dict[str, str]) -> None:
    line = one_line(run(env, "record", "meeting", "water", "--on", "31/02/2027", code=7))
    assert "--on" in line and "31/02/2027" in line


def test_unknown_schema_version_is_refused(env: dict[str, str]) -> None:
    engine = make_engine(env["MSPFLOW_DATABASE_URL"])
    with write_session(engine) as s:
        s.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    engine.dispose()
    line = one_line(run(env, "partnership", "list", code=9))
    assert f"schema version {SCHEMA_VERSION + 1}" in line


def test_init_twice_keeps_everything(env: dict[str, str]) -> None:
    assert "already exists" in run(env, "init", "--admin", "ana")
    assert "water" in run(env, "partnership", "list")


def test_waive_advance_and_history(env: dict[str, str]) -> None:
    for criterion in (
        "challenge-framed",
        "challenge-linked-to-sdg",
        "lead-and-support",
        "case-for-partnering",
        "partner-identified",
    ):
        run(env, "waive", "water", criterion, "--reason", "pilot")
    data = json.loads(run(env, "advance", "water", "--json"))
    assert data["step"]["number"] == 2 and len(data["waived"]) == 5
    events = json.loads(run(env, "history", "water", "--json"))
    assert [e["kind"] for e in events] == ["create"] + ["waive"] * 5 + ["advance"]
    assert events[-1]["waived"] == sorted(events[-1]["waived"]) and events[-1]["actor"] == "ana"
    text = run(env, "history", "water")
    assert "waived: case-for-partnering" in text and "reason: pilot" in text


def test_onboard_debt_and_import(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "partnership", "create", "Ongoing", "--id", "ongoing", "--at-step", "3")
    debt = json.loads(run(env, "debt", "list", "ongoing", "--json"))
    assert len(debt) == 11 and {d["status"] for d in debt} == {"open"}
    rows = tmp_path / "rows.csv"
    rows.write_text("kind,code,challenge\nsdg,6.1,\nprofile,,Dry-season water\n")
    assert "1 sdg, 1 profile recorded" in run(env, "import", "ongoing", str(rows))
    out = json.loads(run(env, "debt", "backfill", "ongoing", "--json"))
    assert out["settled"] == ["1:challenge-framed", "1:challenge-linked-to-sdg"]


def test_subprocess_state_survives_the_process(env: dict[str, str]) -> None:
    """Real processes: what one wrote, the next reads back."""
    base = [sys.executable, "-m", "mspflow"]
    full = {**__import__("os").environ, **env}
    subprocess.run(
        [*base, "record", "lesson", "water", "Start early"],
        env=full,
        check=True,
        capture_output=True,
    )
    shown = subprocess.run(
        [*base, "partnership", "show", "water", "--json"],
        env=full,
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(shown.stdout)["version"] == 2
