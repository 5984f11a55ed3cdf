"""The sweep on a moved clock: reminders, overdue flags, due reviews, downtime,
exactly-once claims and delivery through a real SMTP server."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import col, select

from mspflow import history
from mspflow.clock import ManualClock
from mspflow.services import Mspflow
from mspflow.services.sweep import SweepReport
from mspflow.store import models as m
from mspflow.store import read_session
from mspflow.store.lookup import find
from tests.scheduler.conftest import (
    PARTNER_EMAILS,
    Inbox,
    bound_socket,
    port_of,
    smtp_controller,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


def berlin(y: int, mo: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).astimezone(UTC)


def fired(engine: Engine, purpose: str | None = None) -> list[m.FiredTrigger]:
    with read_session(engine) as s:
        query = select(m.FiredTrigger).order_by(col(m.FiredTrigger.id))
        if purpose:
            query = query.where(m.FiredTrigger.purpose == purpose)
        return list(s.exec(query))


def notifications(engine: Engine) -> list[m.Notification]:
    with read_session(engine) as s:
        return list(s.exec(select(m.Notification).order_by(col(m.Notification.id))))


def detail(t: m.FiredTrigger) -> dict[str, Any]:
    return dict(json.loads(t.detail))


def test_monthly_berlin_meeting_stays_at_nine_local_across_both_dst_changes(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any
) -> None:
    sweeper = sweeper_for()
    # 2027: CEST from 28 March to 31 October. 09:00 in Berlin is 08:00Z in winter
    # and 07:00Z in summer; the expected instants, written out:
    expected = {
        3: datetime(2027, 3, 4, 8, 0, tzinfo=UTC),
        4: datetime(2027, 4, 4, 7, 0, tzinfo=UTC),
        5: datetime(2027, 5, 4, 7, 0, tzinfo=UTC),
        6: datetime(2027, 6, 4, 7, 0, tzinfo=UTC),
        7: datetime(2027, 7, 4, 7, 0, tzinfo=UTC),
        8: datetime(2027, 8, 4, 7, 0, tzinfo=UTC),
        9: datetime(2027, 9, 4, 7, 0, tzinfo=UTC),
        10: datetime(2027, 10, 4, 7, 0, tzinfo=UTC),
        11: datetime(2027, 11, 4, 8, 0, tzinfo=UTC),
        12: datetime(2027, 12, 4, 8, 0, tzinfo=UTC),
    }
    for month in range(3, 13):
        meeting = expected[month]
        reminder = meeting - timedelta(days=1)  # 09:00 Berlin the day before (same offset)
        clock.set(reminder - timedelta(minutes=1))
        sweeper.sweep()
        due = [t for t in fired(engine, "reminder") if detail(t)["lead_days"] == 1]
        assert all(t.occurrence.astimezone(UTC) != meeting for t in due), month
        clock.set(reminder)
        sweeper.sweep()
        due = [t for t in fired(engine, "reminder") if detail(t)["lead_days"] == 1]
        latest = [t for t in due if t.occurrence.astimezone(UTC) == meeting]
        assert len(latest) == 1, month
        local = latest[0].occurrence.astimezone(BERLIN)
        assert (local.hour, local.minute, local.day) == (9, 0, 4)
        assert latest[0].due_at.astimezone(UTC) == reminder


def test_each_reminder_reaches_each_recipient_once(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    sweeper = sweeper_for(port)
    clock.set(berlin(2027, 2, 25))  # 7 days before the first coordination meeting
    report = sweeper.sweep()
    assert report.fired["reminder notified"] == 1 and report.failed == 0
    recipients = Counter(rcpt for rcpt, _ in inbox.delivered())
    assert set(recipients) == PARTNER_EMAILS | {"ana@example.org"}
    assert set(recipients.values()) == {1}
    subject = inbox.messages[0][2]["Subject"]
    assert "coordination meeting on 2027-03-04 09:00 Europe/Berlin" in subject
    # Sweeping again, now or a little later, sends nothing twice.
    sweeper.sweep()
    clock.advance(timedelta(hours=2))
    sweeper.sweep()
    assert len(inbox.delivered()) == len(recipients)
    ids = [mid for _, mid in inbox.delivered()]
    assert len(set(ids)) == len(ids)


def test_missing_minutes_raise_an_overdue_flag_escalated_to_the_secretariat(
    engine: Engine,
    clock: ManualClock,
    service: Mspflow,
    water: str,
    sweeper_for: Any,
    smtp_server: Any,
) -> None:
    inbox, port = smtp_server
    sweeper = sweeper_for(port)
    clock.set(berlin(2027, 3, 11) - timedelta(minutes=1))  # grace: 7 days after 4 March
    sweeper.sweep()
    assert fired(engine, "overdue") == []
    clock.set(berlin(2027, 3, 11))
    inbox.messages.clear()
    report = sweeper.sweep()
    flags = fired(engine, "overdue")
    assert len(flags) == 1 and detail(flags[0])["schedule"] == "coordination-meeting"
    assert report.fired["overdue notified"] == 1
    assert [rcpt for rcpt, _ in inbox.delivered()] == ["ana@example.org"]
    assert "overdue" in inbox.messages[0][2]["Subject"]
    # The minutes arrive late: the flag is resolved, not raised again.
    service.evidence.record(
        partnership=water, kind="meeting", values={"on": "2027-03-12", "minutes": "Late start"}
    )
    clock.advance(timedelta(hours=1))
    assert sweeper.sweep().resolved == 1
    assert fired(engine, "overdue")[0].resolved_at is not None
    # April's meeting is held on time: no flag for it.
    service.evidence.record(
        partnership=water, kind="meeting", values={"on": "2027-04-04", "minutes": "On time"}
    )
    clock.set(berlin(2027, 4, 12))
    sweeper.sweep()
    assert len(fired(engine, "overdue")) == 2  # April's monitoring is missing, not the meeting
    assert detail(fired(engine, "overdue")[1])["schedule"] == "monitoring"


def test_a_due_quarterly_review_moves_step_7_to_9_as_the_scheduler(
    engine: Engine,
    clock: ManualClock,
    service: Mspflow,
    water: str,
    sweeper_for: Any,
) -> None:
    service.evidence.record(
        partnership=water,
        kind="schedule",
        values={"kind": "review-panel", "cadence": "quarterly", "start": "2027-04-15"},
    )
    sweeper = sweeper_for()
    clock.set(berlin(2027, 4, 15) - timedelta(seconds=1))
    sweeper.sweep()
    with read_session(engine) as s:
        assert find(s, water).state == "delivering"
    clock.set(berlin(2027, 4, 15))
    report = sweeper.sweep()
    assert report.moved == [water]
    with read_session(engine) as s:
        p = find(s, water)
        assert p.state == "reviewing"
        everything = list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))
    last = service.partnerships.history(partnership=water).events[-1]
    assert (last.actor, last.role, last.kind) == ("scheduler", "system", "review-due")
    assert (last.from_state, last.to_state) == ("delivering", "reviewing")
    assert last.data["occurrence"] == "2027-04-15T07:00Z"
    assert list(history.verify(everything)) == []
    moves = [t for t in fired(engine, "review-due") if t.outcome == "moved"]
    assert len(moves) == 1 and detail(moves[0])["seq"] == last.seq
    # Sweeping again moves nothing; the next quarter finds it already in step 9.
    sweeper.sweep()
    clock.set(berlin(2027, 7, 15))
    sweeper.sweep()
    events = service.partnerships.history(partnership=water).events
    assert [e.kind for e in events].count("review-due") == 1
    outcomes = [t.outcome for t in fired(engine, "review-due")]
    assert outcomes == ["moved", "not-applicable"]


def test_after_downtime_each_missed_trigger_fires_at_most_once_and_late(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any
) -> None:
    sweeper = sweeper_for(batch=1)  # one schedule, one trigger, one message per page
    clock.set(berlin(2027, 2, 1))
    sweeper.sweep()  # the daemon runs once, then is down until June
    clock.set(berlin(2027, 6, 2))
    report = sweeper.sweep()
    rows = fired(engine)
    coordination = [t for t in rows if detail(t)["schedule"] == "coordination-meeting"]
    reminders = [t for t in coordination if t.purpose == "reminder"]
    sent = [t for t in reminders if t.outcome == "notified"]
    # Only the nearest reminder of the one occurrence still ahead (4 June) is sent, late.
    assert [(t.occurrence.astimezone(UTC), detail(t)["lead_days"]) for t in sent] == [
        (berlin(2027, 6, 4), 7)
    ]
    assert sent[0].late
    skipped = [t for t in reminders if t.outcome == "skipped"]
    assert len(skipped) == 6 and all("passed" in detail(t)["why"] for t in skipped)
    # Every missed meeting is flagged overdue, but the secretariat gets one escalation.
    flags = [t for t in coordination if t.purpose == "overdue"]
    assert [t.occurrence.astimezone(UTC) for t in flags] == [
        berlin(2027, 3, 4),
        berlin(2027, 4, 4),
        berlin(2027, 5, 4),
    ]
    assert [t.outcome for t in flags] == ["flagged", "flagged", "notified"]
    assert len(detail(flags[-1])["missed"]) == 3
    per_trigger = Counter(n.trigger_id for n in notifications(engine))
    assert all(count <= 2 for count in per_trigger.values())  # terminal + ana
    assert report.late == len([t for t in rows if t.late])
    # A second sweep at the same moment fires nothing more.
    assert not sweeper.sweep().fired


def test_two_sweepers_on_one_database_deliver_each_reminder_once(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    first, second = sweeper_for(port, "one"), sweeper_for(port, "two")
    for moment in (berlin(2027, 2, 25), berlin(2027, 3, 3), berlin(2027, 3, 18)):
        clock.set(moment)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(sweeper: Any, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait()
                sweeper.sweep()
            except BaseException as exc:  # reported below
                errors.append(exc)  # noqa: B023 (joined before the next round)

        threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
    delivered = inbox.delivered()
    assert len(delivered) == len(set(delivered))
    reminders = Counter(
        rcpt
        for _, rcpts, msg in inbox.messages
        for rcpt in rcpts
        if "overdue" not in msg["Subject"]
    )
    # Three reminders (7 and 1 day before the meeting, 7 days before monitoring),
    # each to the four people; and one escalation of the missed meeting to ana.
    assert reminders == {address: 3 for address in PARTNER_EMAILS | {"ana@example.org"}}
    assert len(delivered) == 4 * 3 + 1
    sweepers = {t.sweeper for t in fired(engine)}
    assert sweepers <= {"one", "two"}


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from mspflow.clock import ManualClock
    from mspflow.scheduler.notify import EmailChannel, SmtpConfig, TerminalChannel
    from mspflow.services.sweep import Sweeper
    from mspflow.store import make_engine

    url, now, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    channels = [
        TerminalChannel(lambda line: None),
        EmailChannel(SmtpConfig(host="127.0.0.1", port=port, security="none", timeout=5)),
    ]
    sweeper = Sweeper(
        make_engine(url),
        ManualClock(datetime.fromisoformat(now)),
        channels=channels,
        name="doomed",
    )
    sweeper.fire()  # claimed, with its notifications: the first half of a sweep
    os.kill(os.getpid(), signal.SIGKILL)  # dies before delivering any
    """
)


def test_a_sweeper_killed_between_claiming_and_sending_loses_nothing(
    engine: Engine,
    db_url: str,
    clock: ManualClock,
    water: str,
    sweeper_for: Any,
    smtp_server: Any,
    tmp_path: Path,
) -> None:
    inbox, port = smtp_server
    clock.set(berlin(2027, 2, 25))
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    done = subprocess.run(
        [sys.executable, str(script), db_url, clock.now().isoformat(), str(port)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert done.returncode == -9, done.stderr
    assert inbox.messages == []
    claimed = fired(engine, "reminder")
    assert [t.sweeper for t in claimed] == ["doomed"]
    assert {n.status for n in notifications(engine)} == {"pending"}
    # A restarted sweeper delivers what was claimed, exactly once.
    restarted = sweeper_for(port, "restarted")
    report = restarted.sweep()
    assert report.sent == len(PARTNER_EMAILS) + 2  # partners, ana, the terminal
    restarted.sweep()
    clock.advance(timedelta(hours=1))
    restarted.sweep()
    per_recipient = Counter(rcpt for rcpt, _ in inbox.delivered())
    assert per_recipient == {address: 1 for address in PARTNER_EMAILS | {"ana@example.org"}}
    assert len(fired(engine, "reminder")) == 1


def test_a_lease_is_judged_by_the_database_clock_not_the_sweeps(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    clock.set(berlin(2027, 2, 25))
    dead = sweeper_for(port, "dead")
    dead.claim(SweepReport(clock.now()))
    leased = dead._lease(clock.now())  # leased, then the process died before sending
    assert leased
    alive = sweeper_for(port, "alive")
    assert alive.sweep().sent == 0  # the lease still holds
    clock.advance(timedelta(hours=5))  # a simulated clock hours ahead changes nothing
    late = sweeper_for(port, "late")
    assert late.sweep().sent == 0 and alive.sweep().sent == 0
    assert inbox.delivered() == []


def test_a_lease_held_by_a_dead_sweeper_expires(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    clock.set(berlin(2027, 2, 25))
    dead = sweeper_for(port, "dead", lease=timedelta(0))  # its lease ends as it is taken
    dead.claim(SweepReport(clock.now()))
    leased = dead._lease(clock.now())  # leased, then the process died before sending
    assert leased
    alive = sweeper_for(port, "alive")
    assert alive.sweep().sent == len(leased)
    assert sorted(rcpt for rcpt, _ in inbox.delivered()) == sorted(
        PARTNER_EMAILS | {"ana@example.org"}
    )


def test_failed_deliveries_are_kept_and_retried_with_backoff(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any
) -> None:
    sock = bound_socket()  # nothing listens here yet: connections are refused
    port = port_of(sock)
    sweeper = sweeper_for(port)
    clock.set(berlin(2027, 2, 25))
    report = sweeper.sweep()
    emails = [n for n in notifications(engine) if n.channel == "email"]
    assert report.failed == len(emails) == 4
    assert all(n.status == "pending" and n.attempts == 1 for n in emails)
    assert all("cannot reach SMTP server" in (n.last_error or "") for n in emails)
    # Not retried before the backoff has passed...
    assert sweeper.sweep().failed == 0
    inbox = Inbox(refuse={"lina@vwn.example.org"})
    controller = smtp_controller(inbox, sock)
    controller.start()
    try:
        clock.advance(timedelta(minutes=1))
        report = sweeper.sweep()
        assert report.sent == 3 and report.failed == 1
        refused = [n for n in notifications(engine) if n.recipient == "lina@vwn.example.org"]
        assert refused[0].status == "pending" and "refused" in (refused[0].last_error or "")
        assert refused[0].next_attempt_at.astimezone(UTC) == clock.now() + timedelta(minutes=2)
        inbox.refuse.clear()
        clock.advance(timedelta(minutes=2))
        assert sweeper.sweep().sent == 1
    finally:
        controller.stop()
        sock.close()
    assert sorted(rcpt for rcpt, _ in inbox.delivered()) == sorted(
        PARTNER_EMAILS | {"ana@example.org"}
    )


def test_the_end_of_the_time_frame_reminds_the_secretariat(
    engine: Engine, clock: ManualClock, water: str, sweeper_for: Any
) -> None:
    sweeper = sweeper_for()
    clock.set(berlin(2029, 2, 27))
    sweeper.sweep()
    assert fired(engine, "time-frame-end") == []
    clock.set(berlin(2029, 2, 28, 10))
    sweeper.sweep()
    [end] = fired(engine, "time-frame-end")
    assert detail(end)["end_date"] == "2029-02-28"
    subjects = [n.subject for n in notifications(engine) if n.trigger_id == end.id]
    assert subjects and all("time frame ends on 2029-02-28" in s for s in subjects)
    assert any("time frame ends on 2029-02-28" in line for line in sweeper_for.lines)


def test_the_midterm_review_follows_the_time_frame(
    engine: Engine, service: Mspflow, water: str
) -> None:
    def midterms() -> list[tuple[date, bool]]:
        with read_session(engine) as s:
            rows = s.exec(select(m.Schedule).where(m.Schedule.kind == "midterm-review"))
            return [(r.starts_on, r.active) for r in rows]

    assert midterms() == [(date(2028, 2, 29), True)]  # day 365 of 730
    service.evidence.record(partnership=water, kind="scope", values={"end": "2028-02-29"})
    assert midterms() == [(date(2028, 2, 29), False), (date(2027, 8, 30), True)]


def test_email_goes_over_starttls_with_a_login(
    engine: Engine, clock: ManualClock, water: str, tmp_path: Path
) -> None:
    import trustme
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from mspflow.scheduler.notify import EmailChannel, SmtpConfig, TerminalChannel
    from mspflow.services.sweep import Sweeper

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    logins: list[tuple[bytes, bool]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        logins.append((data.login, ok))
        return AuthResult(success=ok)

    inbox = Inbox()
    sock = bound_socket()
    port = port_of(sock)
    controller = smtp_controller(
        inbox,
        sock,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:

        def sweeper(password: str, name: str) -> Sweeper:
            config = SmtpConfig(
                host="127.0.0.1",
                port=port,
                security="starttls",
                username="msp",
                password=password,
                sender="MSP <msp@example.org>",
                ca_file=str(ca_file),
                timeout=5,
            )
            return Sweeper(
                engine,
                clock,
                channels=[TerminalChannel(lambda line: None), EmailChannel(config)],
                name=name,
            )

        clock.set(berlin(2027, 2, 25))
        refused = sweeper("wrong", "one").sweep()
        assert refused.failed == 4 and inbox.messages == []
        assert logins == [(b"msp", False)]
        clock.advance(timedelta(minutes=1))
        report = sweeper("s3cret", "two").sweep()
        assert report.sent == 4 and report.failed == 0
    finally:
        controller.stop()
        sock.close()
    assert sorted(rcpt for rcpt, _ in inbox.delivered()) == sorted(
        PARTNER_EMAILS | {"ana@example.org"}
    )
    assert logins[-1] == (b"msp", True)


def test_a_review_due_after_a_person_moved_the_partnership_is_not_applicable(
    engine: Engine, clock: ManualClock, service: Mspflow, water: str
) -> None:
    from mspflow.services.sweep import Sweeper

    service.evidence.record(
        partnership=water,
        kind="schedule",
        values={"kind": "review-panel", "cadence": "quarterly", "start": "2027-04-15"},
    )

    class Stale(Sweeper):
        """Reads the portfolio, then someone moves the partnership before the review."""

        def _plans(self, s: Any) -> Any:
            plans = super()._plans(s)
            service.partnerships.move(
                partnership=water, kind="revisit", dest="5", reason="a lead left"
            )
            return plans

    clock.set(berlin(2027, 4, 15))
    report = Stale(engine, clock, channels=[]).sweep()
    assert report.moved == []
    [review] = fired(engine, "review-due")
    assert review.outcome == "not-applicable" and "5 Structuring" in detail(review)["why"]
    with read_session(engine) as s:
        assert find(s, water).state == "structuring"
