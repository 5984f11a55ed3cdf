"""Leases that cannot double-send, against a real (slow) SMTP server.

A lease is per message: renewed right before the message is handed over and
judged by the database's clock (PostgreSQL's, or this host's real clock on
SQLite), never by a sweeper's own, possibly simulated, clock. A sender that
lost its lease sends nothing more.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from mspflow.clock import ManualClock
from mspflow.scheduler.notify import EmailChannel, TerminalChannel, message_id
from mspflow.services.sweep import Sweeper, SweepReport
from tests.scheduler.conftest import Inbox, plain_smtp, running_smtp
from tests.scheduler.test_isolation import add_schedule
from tests.scheduler.test_sweep import berlin, notifications

#: Seconds the slow server takes over each message.
DELAY = 0.1
#: Reminders due at once: water's meeting and eleven more, each to four people.
EXTRA = 11


def sweeper(engine: Engine, clock: ManualClock, port: int, name: str, **kw: Any) -> Sweeper:
    channels = [TerminalChannel(lambda _line: None), EmailChannel(plain_smtp(port))]
    return Sweeper(engine, clock, channels=channels, name=name, **kw)


def sweep_until_all_sent(engine: Engine, sweepers: Sequence[Sweeper]) -> list[SweepReport]:
    """Run each sweeper in a thread of its own, sweeping again and again (as a
    daemon does) until the outbox holds nothing unsent."""
    reports: list[SweepReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(sweepers))

    def daemon(s: Sweeper) -> None:
        try:
            start.wait()
            end = time.monotonic() + 120
            while time.monotonic() < end:
                reports.append(s.sweep())
                if all(n.status == "sent" for n in notifications(engine)):
                    return
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=daemon, args=(s,)) for s in sweepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return reports


def expected_emails(engine: Engine) -> set[tuple[str, str]]:
    return {
        (n.recipient, message_id(n.id or 0, str(n.trigger_id), "mspflow"))
        for n in notifications(engine)
        if n.channel == "email"
    }


def test_two_daemons_and_a_slow_server_deliver_each_message_once(
    engine: Engine, clock: ManualClock, water: str
) -> None:
    for _ in range(EXTRA):
        add_schedule(engine, water)
    inbox = Inbox(delay=DELAY)
    lease = timedelta(seconds=2)  # 48 messages take 4.8 s: far more than fit in a lease
    with running_smtp(inbox) as port:
        clock.set(berlin(2027, 2, 25))
        a = sweeper(engine, clock, port, "daemon-a", lease=lease)
        b = sweeper(engine, clock, port, "daemon-b", lease=lease)
        reports = sweep_until_all_sent(engine, [a, b])
    delivered = inbox.delivered()
    assert len(delivered) == 4 * (EXTRA + 1) == 48
    assert Counter(delivered) == dict.fromkeys(expected_emails(engine), 1)
    assert sum(r.lease_lost for r in reports) == 0
    assert {n.status for n in notifications(engine)} == {"sent"}


def test_two_sweepers_with_clocks_hours_apart_send_no_duplicate(
    engine: Engine, clock: ManualClock, water: str
) -> None:
    for _ in range(EXTRA):
        add_schedule(engine, water)
    inbox = Inbox(delay=DELAY / 2)
    with running_smtp(inbox) as port:
        now = berlin(2027, 2, 25)
        clock.set(now)
        behind = sweeper(engine, clock, port, "behind")  # the default lease: 5 minutes
        ahead = sweeper(engine, ManualClock(now + timedelta(hours=5)), port, "ahead")
        sweep_until_all_sent(engine, [behind, ahead])
    delivered = inbox.delivered()
    assert Counter(delivered) == dict.fromkeys(expected_emails(engine), 1)
    assert len(delivered) == 48


def test_a_sender_that_lost_its_lease_sends_nothing_more(
    engine: Engine, clock: ManualClock, water: str, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    clock.set(berlin(2027, 2, 25))
    slow = sweeper(engine, clock, port, "slow", lease=timedelta(0))  # expires as it is taken
    report = SweepReport(clock.now())
    slow.claim(report)
    mine = slow._lease(clock.now())
    assert len(mine) == 5  # the terminal and four addresses
    other = sweeper(engine, clock, port, "other")
    theirs = other._lease(clock.now())  # the lease had passed: taken over
    assert [n.id for n in theirs] == [n.id for n in mine]
    slow._deliver_round(mine, report)  # the first sender wakes up: sends nothing
    assert inbox.messages == [] and report.sent == 0
    later = SweepReport(clock.now())
    other._deliver_round(theirs, later)
    assert later.sent == 5 and later.lease_lost == 0
    assert Counter(inbox.delivered()) == dict.fromkeys(expected_emails(engine), 1)


def test_two_sweepers_given_the_same_name_still_hold_separate_leases(
    engine: Engine, clock: ManualClock, water: str, smtp_server: Any
) -> None:
    inbox, port = smtp_server
    clock.set(berlin(2027, 2, 25))
    first = sweeper(engine, clock, port, "daemon", lease=timedelta(0))
    report = SweepReport(clock.now())
    first.claim(report)
    mine = first._lease(clock.now())
    twin = sweeper(engine, clock, port, "daemon")
    theirs = twin._lease(clock.now())
    assert len(theirs) == len(mine) == 5
    first._deliver_round(mine, report)
    assert inbox.messages == []
    twin._deliver_round(theirs, SweepReport(clock.now()))
    assert len(inbox.delivered()) == 4
