"""One bad row stops nobody: schedules that cannot be computed and messages that
can never be sent are recorded with their error, escalated once to the
secretariat, and every other reminder still reaches a real SMTP server.

The poisoned rows are written straight into the tables, as a database filled
before input was validated holds them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, update
from sqlmodel import col, select

from mspflow.clock import ManualClock
from mspflow.store import models as m
from mspflow.store import read_session, write_session
from tests.conftest import invoke
from tests.scheduler.conftest import PARTNER_EMAILS, closed_port
from tests.scheduler.test_sweep import berlin, fired, notifications

UTC = timezone.utc

#: Values ``schedule add`` accepted before it validated them; each makes the
#: computation of the schedule's triggers fail.
POISONS: dict[str, dict[str, Any]] = {
    "grace": {"grace_days": 2_000_000_000},  # fits the column on both backends
    "lead": {"lead_days": "3650000"},
    # 09:00 in Tokyo's local mean time of year 1 is still year 0 in UTC.
    "start": {"starts_on": date(1, 1, 1), "timezone": "Asia/Tokyo", "cadence": "once"},
}


def add_schedule(engine: Engine, slug: str, **values: Any) -> int:
    """A coordination-meeting schedule row, written directly (no validation)."""
    with write_session(engine) as s:
        pid = s.exec(select(m.Partnership.id).where(m.Partnership.slug == slug)).one()
        row = {
            "partnership_id": pid,
            "recorded_by": "ana",
            "recorded_at": datetime(2027, 1, 4, 9, 0, tzinfo=UTC),
            "kind": "coordination-meeting",
            "cadence": "monthly",
            "starts_on": date(2027, 3, 4),
            "local_time": "09:00",
            "timezone": "Europe/Berlin",
            "lead_days": "7,1",
            "grace_days": 7,
            "active": True,
            **values,
        }
        result = s.execute(insert(m.Schedule).returning(col(m.Schedule.id)), [row])
        return int(result.scalar_one())


def unfold(header: Any) -> str:
    """A header as written before folding (RFC 5322: CRLF + whitespace is a fold)."""
    return re.sub(r"\r?\n(?=[ \t])", "", str(header))


def only_ana_gets_email(engine: Engine, slug: str) -> None:
    with write_session(engine) as s:
        pid = s.exec(select(m.Partnership.id).where(m.Partnership.slug == slug)).one()
        s.execute(
            update(m.Partner).where(col(m.Partner.partnership_id) == pid).values(contact_email=None)
        )


def test_poisoned_schedules_among_a_hundred_healthy_ones_stop_no_reminder(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    only_ana_gets_email(engine, water)
    poisoned = {name: add_schedule(engine, water, **values) for name, values in POISONS.items()}
    healthy = [add_schedule(engine, water) for _ in range(100)]
    sweeper = sweeper_for(port)
    clock.set(berlin(2027, 2, 25))  # 7 days before 4 March: every healthy one reminds
    report = sweeper.sweep()

    # Every reminder reached the server, once; 101 = the 100 and water's own meeting.
    reminders = [msg for _, _, msg in inbox.messages if "coordination meeting on" in msg["Subject"]]
    assert len(reminders) == 101
    assert len({msg["Message-ID"] for msg in reminders}) == 101
    assert report.fired["reminder notified"] == 101
    assert report.failed == 0 and report.undeliverable == 0
    # Each poisoned schedule: recorded with its error, escalated to the secretariat once.
    assert report.schedule_failures == 3
    failures = fired(engine, "schedule-failed")
    assert sorted(t.schedule_id for t in failures) == sorted(poisoned.values())
    errors = {t.schedule_id: json.loads(t.detail)["error"] for t in failures}
    assert errors[poisoned["grace"]].startswith("OverflowError")
    assert errors[poisoned["lead"]].startswith("OverflowError")
    assert errors[poisoned["start"]] == "OverflowError: date value out of range"
    assert all(line.startswith("partnership water: schedule ") for line in report.failures)
    escalations = [msg for _, _, msg in inbox.messages if "failed" in msg["Subject"]]
    assert sorted(unfold(msg["Subject"]) for msg in escalations) == sorted(
        f"[mspflow] Safe water: schedule {sid} (coordination-meeting) failed; "
        "its reminders and checks are not running"
        for sid in poisoned.values()
    )
    assert {rcpt for _, rcpts, msg in inbox.messages if msg in escalations for rcpt in rcpts} == {
        "ana@example.org"
    }
    with read_session(engine) as s:
        due = dict(s.exec(select(m.Schedule.id, m.Schedule.next_due_at)).all())
    assert all(due[sid] is not None for sid in healthy)
    assert all(due[sid] is None for sid in poisoned.values())  # looked at again next time

    # The next sweep meets the same failures: counted again, escalated no more.
    clock.advance(timedelta(hours=1))
    inbox.messages.clear()
    again = sweeper.sweep()
    assert again.schedule_failures == 3
    assert inbox.messages == []
    assert len(fired(engine, "schedule-failed")) == 3


def test_crlf_in_a_name_never_reaches_a_header_and_a_bad_address_fails_alone(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    with write_session(engine) as s:
        s.execute(
            update(m.Partnership)
            .where(col(m.Partnership.slug) == water)
            .values(name="Safe\r\nBcc: mallory@evil.example\r\nwater")
        )
        s.execute(
            update(m.Partner)
            .where(col(m.Partner.contact_email) == "lina@vwn.example.org")
            .values(
                contact_email="lina@vwn.example.org\r\nBcc: mallory@evil.example",
                contact_name="Lina\nVo",
            )
        )
        s.execute(
            update(m.Partner)
            .where(col(m.Partner.contact_email) == "dara@mrd.example.org")
            .values(contact_name="Dara\r\nBcc: mallory@evil.example")
        )
    sweeper = sweeper_for(port)
    clock.set(berlin(2027, 2, 25))
    report = sweeper.sweep()

    rcpts = Counter(rcpt for rcpt, _ in inbox.delivered())
    assert rcpts == {
        "dara@mrd.example.org": 1,
        "rith@mekongpumps.example.com": 1,
        "ana@example.org": 2,  # the reminder, and the escalation of lina's
    }
    [to_dara] = [msg for _, rcpts, msg in inbox.messages if rcpts == ["dara@mrd.example.org"]]
    assert unfold(to_dara["To"]) == '"Dara Bcc: mallory@evil.example" <dara@mrd.example.org>'
    for _, _, msg in inbox.messages:
        assert msg["Bcc"] is None
        assert "\r" not in unfold(msg["Subject"]) and "\n" not in unfold(msg["Subject"])
    subjects = sorted(unfold(msg["Subject"]) for _, _, msg in inbox.messages)
    assert subjects == [
        "[mspflow] Safe Bcc: mallory@evil.example water: a notification could not be delivered",
        "[mspflow] Safe Bcc: mallory@evil.example water: coordination meeting on "
        "2027-03-04 09:00 Europe/Berlin",
        "[mspflow] Safe Bcc: mallory@evil.example water: coordination meeting on "
        "2027-03-04 09:00 Europe/Berlin",
        "[mspflow] Safe Bcc: mallory@evil.example water: coordination meeting on "
        "2027-03-04 09:00 Europe/Berlin",
    ]
    stored = notifications(engine)  # composed header-safe, before any channel sees it
    assert all("\r" not in n.subject and "\n" not in n.subject for n in stored)
    [bad] = [n for n in stored if n.recipient.startswith("lina@")]
    assert bad.status == "failed" and bad.attempts == 1
    assert bad.last_error == (
        "cannot build the message: recipient: 'lina@vwn.example.org\\r\\nBcc: "
        "mallory@evil.example' contains a line break or control character (write it on one line)"
    )
    assert report.undeliverable == 1 and report.failed == 0
    assert report.failures == [
        f"partnership water: notification {bad.id}: {bad.last_error}"
    ]  # fmt: skip
    [escalation] = fired(engine, "delivery-failed")
    assert json.loads(escalation.detail)["what"] == f"notification {bad.id}"

    # Never retried, never escalated again.
    clock.advance(timedelta(days=1))
    inbox.messages.clear()
    later = sweeper.sweep()
    assert later.undeliverable == 0 and later.failures == []
    assert [n.attempts for n in notifications(engine) if n.id == bad.id] == [1]
    assert len(fired(engine, "delivery-failed")) == 1
    assert not [msg for _, _, msg in inbox.messages if "could not be delivered" in msg["Subject"]]


def test_an_undeliverable_escalation_is_not_escalated_again(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    only_ana_gets_email(engine, water)
    with write_session(engine) as s:  # the secretariat's own address is broken
        s.execute(
            update(m.User).where(col(m.User.name) == "ana").values(email="ana@example.org\nX: y")
        )
    add_schedule(engine, water, **POISONS["lead"])
    clock.set(berlin(2027, 2, 25))
    report = sweeper_for(port).sweep()
    # The reminder and the escalation of the schedule cannot go to ana; each is
    # escalated once, and those escalations fail too and end there.
    assert report.schedule_failures == 1
    assert report.undeliverable == 4
    assert inbox.messages == []
    assert len(fired(engine, "delivery-failed")) == 2
    assert {n.status for n in notifications(engine) if n.channel == "email"} == {"failed"}
    assert {n.status for n in notifications(engine) if n.channel == "terminal"} == {"sent"}


def cli_env(db_url: str, **more: str) -> dict[str, str]:
    return {
        "MSPFLOW_DATABASE_URL": db_url,
        "MSPFLOW_ACTOR": "ana",
        "MSPFLOW_CONFIG": "/nonexistent/config.toml",
        **more,
    }


def test_remind_due_exits_11_naming_the_failures_and_shows_them(
    engine: Engine, db_url: str, water: str
) -> None:
    sid = add_schedule(engine, water, **POISONS["start"])
    env = cli_env(db_url)
    result = invoke("remind", "due", "--now", "2027-02-25T08:00:00Z", env=env)
    assert result.exit_code == 11, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(
        "mspflow: partial sweep: 1 schedule(s) and 0 notification(s) failed and were "
        f"recorded; the rest was handled (first: partnership water: schedule {sid} "
        "(coordination-meeting): OverflowError"
    ), last
    assert "coordination meeting on 2027-03-04 09:00 Europe/Berlin" in result.output
    shown = json.loads(
        invoke("schedule", "fired", "--purpose", "schedule-failed", "--json", env=env).output
    )
    assert [(f["purpose"], f["outcome"]) for f in shown] == [("schedule-failed", "notified")]
    assert shown[0]["error"].startswith("OverflowError")
    text = invoke("schedule", "fired", env=env).output
    assert "schedule-failed" in text and "error: OverflowError" in text
    # The escalation went to the terminal (no SMTP here) and is in the outbox as sent.
    outbox = json.loads(invoke("remind", "outbox", "--all", "--json", env=env).output)
    assert any("failed; its reminders" in n["subject"] for n in outbox)
    # schedule list and status say which schedule cannot be computed, and go on.
    listed = json.loads(invoke("schedule", "list", "water", "--json", env=env).output)
    assert [d["error"] is not None for d in listed if d["id"] == sid] == [True]
    assert [d["next"] for d in listed if d["kind"] == "monitoring"] != [None]
    status = invoke(
        "schedule", "status", "water", "--json", env={**env, "MSPFLOW_NOW": "2027-02-25T08:00:00Z"}
    )
    assert status.exit_code == 0, status.output
    items = json.loads(status.output)["items"]
    assert [(i["status"], i["schedule_id"]) for i in items if i["status"] == "failed"] == [
        ("failed", sid)
    ]


def test_a_failed_schedule_wins_over_a_delivery_to_retry(
    engine: Engine, db_url: str, water: str
) -> None:
    add_schedule(engine, water, **POISONS["lead"])
    with closed_port() as port:
        env = cli_env(
            db_url,
            MSPFLOW_SMTP_HOST="127.0.0.1",
            MSPFLOW_SMTP_PORT=str(port),
            MSPFLOW_SMTP_SECURITY="none",
        )
        result = invoke("remind", "due", "--now", "2027-02-25T08:00:00Z", env=env)
    assert result.exit_code == 11, result.output
    last = result.output.strip().splitlines()[-1]
    assert "1 schedule(s) and 0 notification(s) failed" in last
    assert "; 5 notification(s) kept for retry;" in last  # 4 reminders, 1 escalation
    pending = json.loads(invoke("remind", "outbox", "--json", env=env).output)
    assert {n["status"] for n in pending} == {"pending"} and len(pending) == 5


def test_only_the_secretariat_runs_sweeps(db_url: str, water: str) -> None:
    for who in ("ivo", "pia"):
        env = {**cli_env(db_url), "MSPFLOW_ACTOR": who}
        for args in (("remind", "due"), ("scheduler", "run", "--max-sweeps", "1")):
            result = invoke(*args, env=env)
            assert result.exit_code == 6, (who, args, result.output)
            [line] = result.output.strip().splitlines()
            assert line.startswith(f"mspflow: {who} (") and "secretariat" in line, line
    with read_session_for(db_url) as s:
        assert s.exec(select(m.FiredTrigger)).first() is None  # nothing swept


def read_session_for(url: str) -> Any:
    from mspflow.store import make_engine

    return read_session(make_engine(url))


def test_the_daemon_logs_each_failure_with_its_partnership_and_keeps_sweeping(
    engine: Engine, db_url: str, water: str
) -> None:
    sid = add_schedule(engine, water, **POISONS["start"])
    done = subprocess.run(
        [sys.executable, "-m", "mspflow", "scheduler", "run", "--max-sweeps", "2",
         "--interval", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            **cli_env(db_url),
            "MSPFLOW_NOW": "2027-02-25T08:00:00Z",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        },
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("mspflow: failed:")]
    assert (
        failed
        == [
            f"mspflow: failed: partnership water: schedule {sid} (coordination-meeting): "
            "OverflowError: date value out of range"
        ]
        * 2
    )
    assert "could not run" not in done.stderr and "sweep failed" not in done.stderr
    sweeps = [line for line in done.stdout.splitlines() if line.startswith("sweep at")]
    assert len(sweeps) == 2 and "1 schedule(s) failed" in sweeps[0]
    assert "coordination meeting on 2027-03-04 09:00" in done.stdout


def test_partner_emails_still_get_their_reminder_next_to_a_poisoned_schedule(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    add_schedule(engine, water, **POISONS["start"])
    clock.set(berlin(2027, 2, 25))
    sweeper_for(port).sweep()
    reminded = {
        rcpt
        for _, rcpts, msg in inbox.messages
        if "coordination meeting on" in msg["Subject"]
        for rcpt in rcpts
    }
    assert reminded == PARTNER_EMAILS | {"ana@example.org"}
