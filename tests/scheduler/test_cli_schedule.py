"""The scheduling commands: schedule add/list/status/fired, remind, scheduler run, calendar."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar

from mspflow.scheduler.times import occurrences
from tests.conftest import invoke
from tests.scheduler.conftest import closed_port


@pytest.fixture
def env(db_url: str, water: str) -> dict[str, str]:
    return {
        "MSPFLOW_DATABASE_URL": db_url,
        "MSPFLOW_ACTOR": "ana",
        "MSPFLOW_CONFIG": "/nonexistent/config.toml",
    }


def run(env: dict[str, str], *args: str, code: int = 0, now: str | None = None) -> str:
    if now is not None:
        env = {**env, "MSPFLOW_NOW": now}
    result = invoke(*args, env=env)
    assert result.exit_code == code, (args, result.output)
    return result.output


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mspflow: "), lines
    return lines[0]


def test_a_cadence_looser_than_the_minimum_is_refused_naming_the_task(env: dict[str, str]) -> None:
    line = one_line(
        run(
            env,
            "schedule",
            "add",
            "water",
            "coordination-meeting",
            "--cadence",
            "quarterly",
            "--start",
            "2027-04-01",
            code=7,
        )
    )
    assert "task 7.1" in line and "quarterly" in line
    line = one_line(
        run(
            env,
            "schedule",
            "add",
            "water",
            "health-check",
            "--cadence",
            "monthly",
            "--start",
            "2027-03-31",
            code=7,
        )
    )
    assert "day 31" in line and "1-28" in line
    line = one_line(
        run(
            env,
            "schedule",
            "add",
            "water",
            "health-check",
            "--cadence",
            "monthly",
            "--start",
            "2027-03-01",
            "--at",
            "25:00",
            code=7,
        )
    )
    assert "25:00" in line


def test_remind_due_sweeps_once_and_reports(env: dict[str, str]) -> None:
    out = run(env, "remind", "due", "--now", "2027-02-25T08:00:00Z")
    assert "coordination meeting on 2027-03-04 09:00 Europe/Berlin" in out
    assert "fired 1 reminder notified" in out
    again = json.loads(run(env, "remind", "due", "--now", "2027-02-25T08:00:00Z", "--json"))
    assert again["fired"] == {} and again["sent"] == 0
    fired = json.loads(run(env, "schedule", "fired", "water", "--json"))
    assert [(f["purpose"], f["outcome"]) for f in fired] == [("reminder", "notified")]
    assert fired[0]["detail"]["lead_days"] == 7
    assert "the outbox is empty" in run(env, "remind", "outbox")
    sent = json.loads(run(env, "remind", "outbox", "--all", "--json"))
    assert [n["channel"] for n in sent] == ["terminal"] and sent[0]["status"] == "sent"


def test_schedule_status_shows_overdue_due_and_upcoming(env: dict[str, str]) -> None:
    now = "2027-03-28T12:00:00Z"  # 4 March's meeting unrecorded, 25 March's monitoring due
    data = json.loads(run(env, "schedule", "status", "water", "--json", now=now))
    by_status = {(i["status"], i["schedule"]) for i in data["items"]}
    assert ("overdue", "coordination-meeting") in by_status
    assert ("due", "monitoring") in by_status
    assert ("upcoming", "coordination-meeting") in by_status
    overdue = [i for i in data["items"] if i["status"] == "overdue"]
    assert overdue[0]["occurrence"] == "2027-03-04T08:00:00Z" and not overdue[0]["flagged"]
    assert data["counts"]["overdue"] == 1
    run(env, "remind", "due", now=now)
    text = run(env, "schedule", "status", "water", now=now)
    assert "overdue" in text and "(flagged)" in text
    portfolio = json.loads(run(env, "schedule", "status", "--json", now=now))
    assert portfolio["portfolio"]["overdue_flags"] == {"water": 1}
    assert portfolio["portfolio"]["by_state"] == {"delivering": 1}
    assert [(i["partnership"], i["schedule"], i["flagged"]) for i in portfolio["items"]] == [
        ("water", "coordination-meeting", True)
    ]
    assert "1 overdue (open flags" in run(env, "schedule", "status", now=now)
    run(env, "record", "meeting", "water", "--on", "2027-03-05", "--minutes", "Held", now=now)
    data = json.loads(run(env, "schedule", "status", "water", "--json", now=now))
    assert data["counts"]["overdue"] == 0


def test_schedule_list_gives_the_next_occurrence(env: dict[str, str]) -> None:
    data = json.loads(run(env, "schedule", "list", "water", "--json", now="2027-03-10T00:00:00Z"))
    kinds = {d["kind"]: d for d in data}
    assert set(kinds) == {"coordination-meeting", "monitoring", "midterm-review"}
    assert kinds["coordination-meeting"]["next"] == "2027-04-04T07:00:00Z"  # 09:00 CEST
    assert kinds["coordination-meeting"]["lead_days"] == [7, 1]


def test_a_failed_delivery_exits_10_and_stays_in_the_outbox(env: dict[str, str]) -> None:
    with closed_port() as port:
        env = {**env, "MSPFLOW_SMTP_HOST": "127.0.0.1", "MSPFLOW_SMTP_PORT": str(port)}
        env["MSPFLOW_SMTP_SECURITY"] = "none"
        out = run(env, "remind", "due", "--now", "2027-02-25T08:00:00Z", code=10)
    assert out.strip().splitlines()[-1].startswith("mspflow: 4 notification(s) not delivered")
    pending = json.loads(run(env, "remind", "outbox", "--json"))
    assert len(pending) == 4 and all(n["status"] == "pending" for n in pending)


def test_bad_smtp_configuration_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[smtp]\nhost = "mail.example.org"\nprot = 25\n')
    line = one_line(run({**env, "MSPFLOW_CONFIG": str(config)}, "remind", "due", code=7))
    assert str(config) in line and "smtp.prot" in line
    config.write_text('[smtp]\nhost = "mail.example.org"\nusername = "msp"\n')
    line = one_line(run({**env, "MSPFLOW_CONFIG": str(config)}, "remind", "due", code=7))
    assert "no password" in line
    config.write_text("[smtp\n")
    line = one_line(run({**env, "MSPFLOW_CONFIG": str(config)}, "remind", "due", code=7))
    assert str(config) in line


def test_scheduler_run_sweeps_and_stops(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mspflow", "scheduler", "run", "--max-sweeps", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            **env,
            "MSPFLOW_NOW": "2027-03-03T08:00:00Z",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        },
    )
    assert done.returncode == 0, done.stderr
    assert "sweep at 2027-03-03 08:00Z: fired" in done.stdout
    assert "coordination meeting on 2027-03-04 09:00" in done.stdout
    assert "sweeping every 60 s" in done.stderr


def test_the_daemon_stops_cleanly_on_sigterm(env: dict[str, str]) -> None:
    daemon = subprocess.Popen(
        [sys.executable, "-m", "mspflow", "scheduler", "run", "--interval", "3600"],
        env={
            **os.environ,
            **env,
            "MSPFLOW_NOW": "2027-03-03T08:00:00Z",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        lines = []
        while not (line := daemon.stdout.readline()).startswith("sweep at"):
            assert line, "the daemon ended before its first sweep"  # EOF
            lines.append(line)  # the terminal channel's reminders come first
        assert line.startswith("sweep at 2027-03-03 08:00Z"), line
        assert "coordination meeting on 2027-03-04" in "".join(lines)
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, err
    assert "stopping on signal 15" in err


def test_two_daemons_on_one_database_send_each_reminder_once(
    env: dict[str, str], smtp_server: Any
) -> None:
    inbox, port = smtp_server
    daemon_env = {
        **os.environ,
        **env,
        "MSPFLOW_SMTP_HOST": "127.0.0.1",
        "MSPFLOW_SMTP_PORT": str(port),
        "MSPFLOW_SMTP_SECURITY": "none",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    for now in ("2027-02-25T08:00:00Z", "2027-03-03T08:00:00Z"):
        daemons = [
            subprocess.Popen(
                [sys.executable, "-m", "mspflow", "scheduler", "run", "--max-sweeps", "1",
                 "--name", name],
                env={**daemon_env, "MSPFLOW_NOW": now},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("daemon-a", "daemon-b")
        ]  # fmt: skip
        for d in daemons:
            _, err = d.communicate(timeout=120)
            assert d.returncode == 0, err
    delivered = inbox.delivered()
    assert len(delivered) == len(set(delivered)) == 8  # two reminders, four people
    fired = json.loads(run(env, "schedule", "fired", "--json"))
    assert len(fired) == 2 and {f["purpose"] for f in fired} == {"reminder"}


def _expand(event: Any, until: datetime) -> list[datetime]:
    start = event.decoded("dtstart")
    if "rrule" not in event:
        return [start]
    rule = rrulestr(event["rrule"].to_ical().decode(), dtstart=start)
    return list(rule.between(start - timedelta(seconds=1), until, inc=True))


def test_calendar_export_round_trips_through_icalendar(
    env: dict[str, str], tmp_path: Path, db_url: str
) -> None:
    run(
        env,
        "schedule",
        "add",
        "water",
        "review-panel",
        "--cadence",
        "quarterly",
        "--start",
        "2027-04-15",
        "--at",
        "14:30",
        "--lead-days",
        "14,2",
    )
    path = tmp_path / "water.ics"
    assert "wrote 5 event(s)" in run(env, "calendar", "export", "water", "-o", str(path))
    cal = Calendar.from_ical(path.read_bytes())
    assert {tz["tzid"] for tz in cal.walk("VTIMEZONE")} == {"Europe/Berlin"}
    events = {str(e["uid"]): e for e in cal.walk("VEVENT")}
    assert len(events) == 5 and "water.time-frame-end@mspflow" in events
    by_kind = {str(e["categories"].cats[1]): e for e in cal.walk("VEVENT") if "categories" in e}
    assert set(by_kind) == {"coordination-meeting", "monitoring", "midterm-review", "review-panel"}
    assert all(uid.startswith("water.schedule-") for uid in events if "time-frame" not in uid)
    berlin = ZoneInfo("Europe/Berlin")
    horizon = datetime(2028, 6, 30, tzinfo=berlin)
    meeting = by_kind["coordination-meeting"]
    assert meeting.decoded("dtstart") == datetime(2027, 3, 4, 9, 0, tzinfo=berlin)
    assert "dtstamp" in meeting
    # Every occurrence the calendar implies is one mspflow computes, and vice versa.
    from types import SimpleNamespace

    for kind, cadence, start, at in (
        ("coordination-meeting", "monthly", date(2027, 3, 4), "09:00"),
        ("monitoring", "monthly", date(2027, 3, 25), "09:00"),
        ("review-panel", "quarterly", date(2027, 4, 15), "14:30"),
        ("midterm-review", "once", date(2028, 2, 29), "09:00"),
    ):
        ours = occurrences(
            SimpleNamespace(
                cadence=cadence, starts_on=start, local_time=at, timezone="Europe/Berlin"
            ),
            after=datetime(2027, 1, 1, tzinfo=berlin),
            until=horizon,
        )
        theirs = [t.astimezone(ZoneInfo("UTC")) for t in _expand(by_kind[kind], horizon)]
        assert theirs == ours, kind
        assert {t.astimezone(berlin).strftime("%H:%M") for t in theirs} == {at}
    review = by_kind["review-panel"]
    triggers = sorted(a.decoded("trigger") for a in review.walk("VALARM"))
    assert triggers == [timedelta(days=-14), timedelta(days=-2)]
    assert all(a["action"] == "DISPLAY" for a in review.walk("VALARM"))
    assert review["rrule"]["UNTIL"][0].date() == date(2029, 2, 28)
    # Exporting again keeps the UIDs, so calendar apps update instead of duplicating.
    again = tmp_path / "again.ics"
    run(env, "calendar", "export", "-o", str(again))
    assert {str(e["uid"]) for e in Calendar.from_ical(again.read_bytes()).walk("VEVENT")} == set(
        events
    )
    line = one_line(run(env, "calendar", "export", "-o", str(tmp_path / "no" / "x.ics"), code=7))
    assert "there is no folder" in line and "x.ics" in line


def test_calendar_export_writes_through_to_what_the_path_is(
    env: dict[str, str], tmp_path: Path
) -> None:
    import contextlib
    import stat
    import threading

    # '-': the calendar on standard output, the count on standard error.
    result = invoke("calendar", "export", "water", "-o", "-", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("BEGIN:VCALENDAR") and "wrote" not in result.stdout
    assert "wrote 4 event(s) to -" in result.stderr
    # A FIFO is written in place, and is still a FIFO afterwards.
    fifo = tmp_path / "calendar.pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        assert "wrote 4 event(s)" in run(env, "calendar", "export", "water", "-o", str(fifo))
    finally:
        # If nothing was written, the reader still waits: open the FIFO for writing
        # without blocking (it fails harmlessly when no reader is left).
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received and received[0].startswith(b"BEGIN:VCALENDAR")
    # A symbolic link is followed: the file it points at is written, the link stays.
    target = tmp_path / "real.ics"
    target.write_text("old")
    link = tmp_path / "link.ics"
    link.symlink_to(target)
    run(env, "calendar", "export", "water", "-o", str(link))
    assert link.is_symlink() and target.read_text().startswith("BEGIN:VCALENDAR")
