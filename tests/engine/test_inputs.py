"""The engine's and the user list's inputs, checked once (mspflow.inputs), on every backend.

A value that breaks a rule gets exit 7 and one line naming the field, with
nothing written; a reference that cannot name a partnership (NUL, over-long,
a number beyond the id column) is simply not found (exit 4), never an
internal error from the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, text
from sqlmodel import select

from mspflow.definition import Workflow
from mspflow.errors import InvalidInput, NotFound
from mspflow.inputs import NAME_MAX, TEXT_MAX
from mspflow.services import Mspflow
from mspflow.store import make_engine, read_session
from mspflow.store import models as m
from mspflow.store.lookup import find
from tests.conftest import SECRETARIAT, Backend, invoke

HEADER_INJECTION = "Water\r\nBcc: everyone@example.org"


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    env = {
        "MSPFLOW_DATABASE_URL": db_url,
        "MSPFLOW_ACTOR": "ana",
        "MSPFLOW_NOW": "2027-01-04T09:00:00Z",
    }
    assert invoke("init", "--admin", "ana", env=env).exit_code == 0
    assert invoke("user", "add", "ivo", "--role", "auditor", env=env).exit_code == 0
    made = invoke("partnership", "create", "Scaling", "--id", "p", "--at-step", "11", env=env)
    assert made.exit_code == 0, made.output
    return env


def _rows(url: str) -> tuple[int, ...]:
    engine = make_engine(url)
    try:
        with read_session(engine) as s:
            return tuple(
                int(s.exec(select(func.count()).select_from(t)).one())
                for t in (m.Partnership, m.HistoryEvent, m.Waiver, m.ScaleUpDecision, m.User)
            )
    finally:
        engine.dispose()


def _refused(env: dict[str, str], code: int, *args: str) -> str:
    """Run a command that must fail with ``code``: one line, nothing written."""
    before = _rows(env["MSPFLOW_DATABASE_URL"])
    result = invoke(*args, env=env)
    lines = result.output.strip().splitlines()
    assert result.exit_code == code, (args, result.output)
    assert len(lines) == 1 and lines[0].startswith("mspflow: "), (args, lines)
    assert _rows(env["MSPFLOW_DATABASE_URL"]) == before, args
    return lines[0]


# --------------------------------------------------------------------------- CLI: exit codes

BAD_VALUES = [
    # (command line, the field the message names)
    (["partnership", "create", HEADER_INJECTION], "name"),
    (["partnership", "create", "Wa\x00ter"], "name"),
    (["partnership", "create", "W" * (NAME_MAX + 1)], "name"),
    (["partnership", "create", "   "], "name"),
    (["partnership", "create", "Water", "--id", "Bad Id"], "id"),
    (["partnership", "create", "Water", "--id", "2027"], "id"),
    (["partnership", "create", "Water", "--id", "w" * 49], "id"),
    (["partnership", "create", "Water", "--timezone", "Europe"], "timezone"),
    (["partnership", "create", "Water", "--timezone", "Mars/Olympus_Mons"], "timezone"),
    (["partnership", "create", "Water", "--timezone", "../../etc/passwd"], "timezone"),
    (["partnership", "create", "Water", "--timezone", "Asia/Tokyo\x00"], "timezone"),
    (["waive", "p", "scale-up-decided", "--reason", "no\x00pe"], "reason"),
    (["waive", "p", "scale-up-decided", "--reason", "r" * (TEXT_MAX + 1)], "reason"),
    (["advance", "p", "--reason", "no\x00pe"], "reason"),
    (["conclude", "p", "--outcome", "transfer", "--note", "no\x00pe"], "note"),
    (["scale-up", "p", "--dimension", "social", "--description", "a\x00b"], "description"),
    (["scale-up", "p", "--dimension", "social", "--description", " "], "description"),
    (
        ["scale-up", "p", "--dimension", "social", "--description", "d", "--replicate", "A\nB"],
        "--replicate",
    ),
    (["user", "add", "zoe\nbcc", "--role", "partner"], "name"),
    (["user", "add", "zo\x00e", "--role", "partner"], "name"),
    (["user", "add", "z" * (NAME_MAX + 1), "--role", "partner"], "name"),
    (["user", "add", "scheduler", "--role", "partner"], "name"),
    (["user", "add", " scheduler ", "--role", "partner"], "name"),
    (["user", "add", "ivo", "--role", "partner"], "name"),  # exists already
    (
        ["user", "add", "zoe", "--role", "partner", "--email", "zoe@example.org\r\nBcc: x@y.org"],
        "email",
    ),
    (["user", "add", "zoe", "--role", "partner", "--email", "zoe"], "email"),
]


def test_bad_values_exit_7_in_one_line_and_write_nothing(env: dict[str, str]) -> None:
    for args, field in BAD_VALUES:
        line = _refused(env, 7, *args)
        assert field in line, (args, line)
        assert "\r" not in line and "\x00" not in line


BAD_REFERENCES = [
    "p\x00",
    "p" * (NAME_MAX + 1),
    "1" * 23,  # beyond PostgreSQL's integer: an overflow, not a partnership
    "99999999999",  # beyond the id column too
    "²",  # a digit to str.isdigit, not to int()
    "\u0661",  # ARABIC-INDIC DIGIT ONE: int() reads it as 1, the id of partnership p
]


def test_references_that_cannot_name_a_partnership_are_not_found(env: dict[str, str]) -> None:
    for ref in BAD_REFERENCES:
        for args in (
            ["partnership", "show", ref],
            ["advance", ref],
            ["waive", ref, "scale-up-decided", "--reason", "r"],
            ["debt", "backfill", ref],
            ["record", "lesson", ref, "text"],
        ):
            line = _refused(env, 4, *args)
            assert "no partnership" in line and "\x00" not in line, (args, line)
    assert invoke("partnership", "show", "1", env=env).exit_code == 0  # a row id still works


def test_valid_values_are_kept_as_given(env: dict[str, str]) -> None:
    made = invoke(
        "partnership", "create", "  Água limpa  ", "--timezone", "America/Santiago", env=env
    )
    assert made.exit_code == 0, made.output
    added = invoke("user", "add", "zoe", "--role", "partner", "--email", "zoe@example.org", env=env)
    assert added.exit_code == 0, added.output
    engine = make_engine(env["MSPFLOW_DATABASE_URL"])
    try:
        with read_session(engine) as s:
            p = s.exec(select(m.Partnership).where(m.Partnership.slug == "gua-limpa")).one()
            zoe = s.exec(select(m.User).where(m.User.name == "zoe")).one()
        assert (p.name, p.timezone) == ("Água limpa", "America/Santiago")
        assert zoe.email == "zoe@example.org"
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- service: fields


def test_errors_name_their_field(
    engine: Engine, service: Mspflow, msp: Workflow, msp_text: str, clock: Any
) -> None:
    slug = service.partnerships.create(name="Water", workflow=msp, definition_text=msp_text).id
    calls: list[tuple[Callable[[], object], str]] = [
        (
            lambda: service.partnerships.create(name="a\nb", workflow=msp, definition_text=""),
            "name",
        ),
        (
            lambda: service.partnerships.create(
                name="a", workflow=msp, definition_text="", timezone="Europe"
            ),
            "timezone",
        ),
        (
            lambda: service.partnerships.create(
                name="a", workflow=msp, definition_text="", slug="A B"
            ),
            "slug",
        ),
        (
            lambda: service.partnerships.waive(
                partnership=slug, criterion="goal-set", reason="\x00"
            ),
            "reason",
        ),
        (
            lambda: service.partnerships.waive(partnership=slug, criterion="goal-set", reason=" "),
            "reason",
        ),
        (lambda: service.partnerships.move(partnership=slug, kind="advance", note="\x00"), "note"),
        (
            lambda: service.partnerships.scale_up(
                partnership=slug, dimensions=["social"], description="d", replica="\x00"
            ),
            "replica",
        ),
        (
            lambda: Mspflow(engine=engine, clock=clock, actor=SECRETARIAT).users.add(
                name="x\ry", role="partner", email=None
            ),
            "name",
        ),
        (
            lambda: Mspflow(engine=engine, clock=clock, actor=SECRETARIAT).users.add(
                name="x", role="partner", email="x@y.org\n"
            ),
            "email",
        ),
        (
            lambda: Mspflow(engine=engine, clock=clock, actor=SECRETARIAT).users.add(
                name="ivo", role="partner", email=None
            ),
            "name",
        ),
    ]
    for call, field in calls:
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.field == field, (field, caught.value)
    for ref in ("x\x00", "9" * 23):
        with pytest.raises(NotFound), read_session(engine) as s:
            find(s, ref)
        with pytest.raises(NotFound):
            service.partnerships.prepare(ref)


# --------------------------------------------------------------------------- duplicate users


def _waiting(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        kind = conn.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
        ).scalar()
    return kind == "Lock"


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_user_added_meanwhile_is_exit_7_not_an_internal_error(
    backend: Backend, engine: Engine, clock: Any
) -> None:
    """Two secretariat members add the same name at once: the second to commit finds
    the name taken by the unique index, after its own check saw it free."""
    outcome: list[BaseException | None] = []
    pid: list[int] = []
    ours = make_engine(engine.url.render_as_string(hide_password=False))

    @event.listens_for(ours, "connect")
    def _note_pid(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid.append(int(cur.fetchone()[0]))

    def adding() -> None:
        try:
            Mspflow(engine=ours, clock=clock, actor=SECRETARIAT).users.add(
                name="zoe", role="partner", email=None
            )
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    try:
        with engine.connect() as other, other.begin():
            other.execute(
                text(
                    "INSERT INTO app_user (name, role, created_at) VALUES ('zoe', 'auditor', now())"
                )
            )
            thread = threading.Thread(target=adding)
            thread.start()
            # Commit only once the check has found no zoe and the insert waits on the index.
            while not (pid and _waiting(engine, pid[0])) and thread.is_alive():
                pass
        thread.join(60)
    finally:
        ours.dispose()
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidInput), outcome
    assert outcome[0].field == "name" and "exists already" in str(outcome[0])
    with read_session(engine) as s:
        assert s.exec(select(m.User.role).where(m.User.name == "zoe")).all() == ["auditor"]
