"""Notifications beyond email: chat and webhook destinations through Apprise, with the
outbox's rules (exactly once, retried while the service fails). Against a real HTTP
server on loopback that receives the JSON webhook, fails, then recovers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from mspflow.clock import ManualClock
from mspflow.errors import DeliveryError, InvalidInput, NotFound
from mspflow.services import Mspflow
from mspflow.store import models as m
from mspflow.store import read_session
from tests.conftest import invoke

BERLIN = ZoneInfo("Europe/Berlin")


class Hook:
    """A webhook receiver: answers 500 to the first ``failures`` posts, then 200."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the http.server API names it so
                size = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(size) or b"{}")
                if hook.refused < hook.failures:
                    hook.refused += 1
                    self.send_response(500)
                else:
                    hook.received.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    found = Hook(failures=2)
    yield found
    found.close()


def sweeper(service: Mspflow, clock: ManualClock) -> Any:
    """The sweeper the daemon builds: terminal, (no SMTP here) and chat."""
    assert service.clock is clock
    return service.scheduler.sweeper(action="sweep", say=lambda _line: None)


def test_a_webhook_gets_each_reminder_once_after_the_service_recovers(
    engine: Engine, clock: ManualClock, service: Mspflow, water: str, hook: Hook
) -> None:
    done = service.channels.add(url=hook.url, label="team-hook", partnership=water)
    assert done.service == f"json://127.0.0.1:{hook.port}" and done.partnership == water
    sweep = sweeper(service, clock)
    clock.set(datetime(2027, 2, 25, 9, 30, tzinfo=BERLIN))  # 7 days before the 03-04 meeting
    first = sweep.sweep()
    assert first.fired["reminder notified"] >= 1
    assert hook.received == [] and hook.refused == 1  # failed: kept for a retry
    with read_session(engine) as s:
        [row] = s.exec(select(m.Notification).where(m.Notification.channel == "chat")).all()
    assert row.status == "pending" and row.attempts == 1 and row.last_error
    assert row.recipient == str(done.id) and row.recipient_name == "team-hook"
    clock.advance(timedelta(seconds=30))
    sweep.sweep()  # before the backoff (a minute) is over: not tried again
    assert hook.refused == 1
    for _ in range(6):  # the service recovers after its second failure
        clock.advance(timedelta(hours=1))
        sweep.sweep()
    assert hook.refused == 2 and len(hook.received) == 1
    [message] = hook.received
    assert "coordination meeting on 2027-03-04" in message["title"]
    assert "Safe water (water)" in message["message"]
    with read_session(engine) as s:
        row = s.exec(select(m.Notification).where(m.Notification.channel == "chat")).one()
    assert row.status == "sent"
    clock.set(datetime(2027, 3, 3, 9, 30, tzinfo=BERLIN))
    sweep.sweep()
    assert len(hook.received) == 2  # the 1-day reminder: one more message, not a repeat
    assert "in 1 day(s)" in hook.received[1]["message"]


def test_a_portfolio_channel_hears_every_partnership(
    clock: ManualClock, service: Mspflow, water: str, hook: Hook
) -> None:
    hook.failures = 0
    service.channels.add(url=hook.url, label="secretariat-room")
    sweep = sweeper(service, clock)
    clock.set(datetime(2027, 2, 25, 9, 30, tzinfo=BERLIN))
    sweep.sweep()
    assert len(hook.received) == 1
    assert [c.label for c in service.channels.list()] == ["secretariat-room"]


def test_adding_and_testing_channels(service: Mspflow, water: str, hook: Hook) -> None:
    with pytest.raises(InvalidInput, match="not a URL of a service Apprise knows") as info:
        service.channels.add(url="nonsense://x", label="bad")
    assert info.value.field == "url"
    service.channels.add(url=hook.url, label="hook")
    with pytest.raises(InvalidInput, match="already a channel 'hook'"):
        service.channels.add(url=hook.url, label="hook")
    with pytest.raises(DeliveryError, match="channel hook"):
        service.channels.test(channel="hook")  # the hook's first failure
    hook.failures = 1
    assert service.channels.test(channel="hook").label == "hook"
    assert hook.received[-1]["title"] == "[mspflow] test message"
    with pytest.raises(NotFound):
        service.channels.test(channel="nope")
    with pytest.raises(Exception, match="configure notifications"):
        service.as_user("ivo").channels.add(url=hook.url, label="auditor's")


def test_the_commands(db_url: str, water: str, hook: Hook) -> None:
    env = {"MSPFLOW_DATABASE_URL": db_url, "MSPFLOW_ACTOR": "ana",
           "MSPFLOW_CONFIG": "/nonexistent/config.toml"}  # fmt: skip
    added = invoke("channel", "add", hook.url + "?token=s3cret", "--label", "room",
                   "-p", water, env=env)  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = invoke("channel", "list", env=env)
    assert "room: json://127.0.0.1" in listed.output and "s3cret" not in listed.output
    failed = invoke("channel", "test", "room", env=env)
    assert failed.exit_code == 10 and "room" in failed.output
    hook.failures = 0
    assert invoke("channel", "test", "room", env=env).exit_code == 0
    bad = invoke("channel", "add", "nonsense://x", "--label", "bad", env=env)
    assert bad.exit_code == 7 and "not a URL of a service Apprise knows" in bad.output
