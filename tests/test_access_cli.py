"""Who may use a database: every command that opens one names a known user.

No user named: exit 6. A name that is not a user of that database: exit 4, as
for any other unknown name. Reads need a user too; ``init`` is exempt (it makes
the first one) and workflow commands, which open no database, need none.
``db upgrade`` needs the secretariat role. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import invoke

NOW = "2027-01-04T09:00:00Z"


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    env = {"MSPFLOW_DATABASE_URL": db_url, "MSPFLOW_ACTOR": "ana", "MSPFLOW_NOW": NOW}
    for args in (
        ("init", "--admin", "ana"),
        ("user", "add", "ivo", "--role", "auditor"),
        ("user", "add", "pia", "--role", "partner"),
        ("partnership", "create", "Safe water", "--id", "water"),
        ("partner", "add", "water", "Village Water Network", "--sector", "civil-society"),
        ("member", "add", "water", "pia", "--partner", "Village Water Network"),
        ("partnership", "create", "Other", "--id", "other"),
        ("schedule", "add", "water", "monitoring", "--cadence", "monthly", "--start", "2027-02-01"),
    ):
        result = invoke(*args, env=env)
        assert result.exit_code == 0, (args, result.output)
    return env


def run(env: dict[str, str], actor: str | None, *args: str) -> Result:
    env = {**env}
    if actor is None:
        env.pop("MSPFLOW_ACTOR")
    else:
        env["MSPFLOW_ACTOR"] = actor
    return invoke(*args, env=env)


def reads(tmp_path: Path) -> list[tuple[str, ...]]:
    return [
        ("partnership", "show", "water"),
        ("partnership", "list"),
        ("history", "water"),
        ("debt", "list", "water"),
        ("partner", "list", "water"),
        ("user", "list"),
        ("calendar", "export", "water", "-o", str(tmp_path / "water.ics")),
        ("schedule", "list", "water"),
        ("schedule", "status"),
        ("schedule", "status", "water"),
        ("schedule", "fired"),
        ("remind", "outbox"),
        ("audit", "verify"),
        ("audit", "log"),
        ("db", "current"),
    ]


WRITES: list[tuple[str, ...]] = [
    ("partnership", "create", "Another"),
    ("advance", "water"),
    ("record", "sdg", "water", "6.1"),
    ("user", "add", "zoe", "--role", "auditor"),
    ("remind", "due"),
    ("db", "upgrade"),
]


def test_an_unknown_user_gets_exit_4_on_every_command(env: dict[str, str], tmp_path: Path) -> None:
    for args in [*reads(tmp_path), *WRITES]:
        result = run(env, "mallory", *args)
        assert result.exit_code == 4, (args, result.output)
        assert result.output.strip().splitlines() == [
            "mspflow: 'mallory' is not a user of this database (check the name; "
            "a secretariat member adds users) [--as or MSPFLOW_ACTOR]"
        ], args
    assert not (tmp_path / "water.ics").exists()


def test_no_user_gets_exit_6_on_every_command(env: dict[str, str], tmp_path: Path) -> None:
    for args in [*reads(tmp_path), *WRITES]:
        result = run(env, None, *args)
        assert result.exit_code == 6, (args, result.output)
        assert "no actor given" in result.output, args
    assert not (tmp_path / "water.ics").exists()


def test_a_partner_reads_the_partnerships_they_are_a_member_of(
    env: dict[str, str], tmp_path: Path
) -> None:
    for args in reads(tmp_path):
        if args[0] == "audit":
            continue  # audits are for auditors and the secretariat (tests/audit)
        result = run(env, "pia", *args)
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / "water.ics").read_text().startswith("BEGIN:VCALENDAR")
    listed = json.loads(run(env, "pia", "partnership", "list", "--json").output)
    assert [p["id"] for p in listed] == ["water"]  # not 'other'


def test_a_partner_reads_no_partnership_they_are_not_a_member_of(
    env: dict[str, str], tmp_path: Path
) -> None:
    for args in reads(tmp_path):
        if "water" not in args:
            continue
        other = tuple("other" if a == "water" else a for a in args)
        result = run(env, "pia", *other)
        assert result.exit_code == 6, (other, result.output)
        assert result.output.strip().splitlines() == [
            "mspflow: pia (partner) may not read partnership other: not a member "
            "(a secretariat member can add them to the partnership)"
        ], other
    assert not (tmp_path / "water.ics").exists()  # the calendar of other was refused


def test_db_upgrade_needs_the_secretariat(env: dict[str, str]) -> None:
    for actor in ("pia", "ivo"):
        result = run(env, actor, "db", "upgrade")
        assert result.exit_code == 6, result.output
        assert f"{actor} (" in result.output and "may not upgrade the database" in result.output
    assert json.loads(run(env, "ana", "db", "upgrade", "--json").output)["to"] is not None


def test_init_and_workflow_commands_need_no_user(db_url: str, tmp_path: Path) -> None:
    env = {"MSPFLOW_DATABASE_URL": db_url, "MSPFLOW_NOW": NOW}
    assert invoke("init", "--admin", "ana", env=env).exit_code == 0
    broken = {**env, "MSPFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'absent' / 'x.db'}"}
    for args in (("workflow", "list"), ("workflow", "show", "msp-12-step")):
        result = invoke(*args, env=broken)  # no user, and no database it could open
        assert result.exit_code == 0, (args, result.output)


def test_the_reserved_scheduler_name_is_refused(env: dict[str, str]) -> None:
    result = run(env, "scheduler", "partnership", "list")
    assert result.exit_code == 6 and "reserved" in result.output


def test_db_upgrade_checks_the_user_on_the_old_schema_before_changing_it(
    env: dict[str, str],
) -> None:
    from mspflow.store import make_engine
    from mspflow.store.migrations import HEAD, KNOWN
    from tests.store.test_migrations import _downgrade

    engine = make_engine(env["MSPFLOW_DATABASE_URL"])
    try:
        _downgrade(engine, KNOWN[0])
    finally:
        engine.dispose()
    for actor, code in (("pia", 6), ("ivo", 6), ("mallory", 4), (None, 6)):
        result = run(env, actor, "db", "upgrade")
        assert result.exit_code == code, (actor, result.output)
        assert json.loads(run(env, "ana", "db", "current", "--json").output)["revision"] == KNOWN[0]
    assert json.loads(run(env, "ana", "db", "upgrade", "--json").output)["to"] == HEAD
