"""Fixtures for the scheduler: a partnership in implementation, a real SMTP server.

The SMTP server listens on a socket bound where its port is chosen (port 0,
the kernel picks), so no other process can take the port in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from sqlalchemy import Engine

from mspflow.clock import ManualClock
from mspflow.definition import Workflow
from mspflow.scheduler.notify import EmailChannel, SmtpConfig, TerminalChannel
from mspflow.services import Mspflow
from mspflow.services.sweep import Sweeper
from mspflow.walk import record_step

PARTNER_EMAILS = {"dara@mrd.example.org", "lina@vwn.example.org", "rith@mekongpumps.example.com"}


@pytest.fixture
def water(service: Mspflow, msp: Workflow, msp_text: str) -> str:
    """A partnership in step 7 (Berlin time), with the walk's schedules: monthly
    coordination meetings from 2027-03-04 09:00 and monthly monitoring from 2027-03-25,
    and a midterm review on 2028-02-29."""
    slug = service.partnerships.create(
        name="Safe water",
        workflow=msp,
        definition_text=msp_text,
        slug="water",
        timezone="Europe/Berlin",
    ).id
    for step in range(1, 7):
        record_step(service, slug, step)
        service.partnerships.move(partnership=slug, kind="advance")
    # The partners chose a midterm review (line 1197), halfway through the scope's time frame.
    service.evidence.record(partnership=slug, kind="schedule", values={"kind": "midterm-review"})
    return slug


@dataclass
class Inbox:
    """What the SMTP server received: (envelope sender, recipients, parsed message)."""

    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    #: Seconds the server takes over each message (a slow server).
    delay: float = 0.0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 Message accepted"

    def delivered(self) -> list[tuple[str, str]]:
        """(recipient, Message-ID) of every delivery."""
        return [(rcpt, msg["Message-ID"]) for _, rcpts, msg in self.messages for rcpt in rcpts]


def bound_socket() -> socket.socket:
    """A loopback socket bound to a port the kernel chose; nothing listens on it
    yet (a connection is refused) until a server is started on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def smtp_controller(handler: Any, sock: socket.socket, **kwargs: Any) -> Any:
    """aiosmtpd's Controller serving on ``sock`` (bound already), not on a port
    it would bind itself later."""
    from aiosmtpd.controller import Controller

    class Bound(Controller):
        def _create_server(self) -> Any:
            return self.loop.create_server(self._factory_invoker, sock=sock, ssl=self.ssl_context)

    return Bound(handler, hostname="127.0.0.1", port=port_of(sock), **kwargs)


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port held bound (so no one else takes it) where every connection is refused."""
    with bound_socket() as sock:
        yield port_of(sock)


@contextlib.contextmanager
def running_smtp(inbox: Inbox) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on loopback, for ``inbox``; yields its port."""
    sock = bound_socket()
    controller = smtp_controller(inbox, sock)
    controller.start()
    try:
        yield port_of(sock)
    finally:
        controller.stop()
        sock.close()


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) on loopback."""
    inbox = Inbox()
    with running_smtp(inbox) as port:
        yield inbox, port


def plain_smtp(port: int) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1", port=port, security="none", sender="MSP <msp@example.org>", timeout=5
    )


@pytest.fixture
def sweeper_for(engine: Engine, clock: ManualClock) -> Any:
    lines: list[str] = []

    def make(port: int | None = None, name: str = "sweeper-1", **kw: Any) -> Sweeper:
        channels: list[Any] = [TerminalChannel(lines.append)]
        if port is not None:
            channels.append(EmailChannel(plain_smtp(port)))
        return Sweeper(engine, clock, channels=channels, name=name, **kw)

    make.lines = lines  # type: ignore[attr-defined]
    return make
