"""Delivery channels: email over SMTP, and the terminal.

A channel takes a batch of notifications and says, for each, whether it was
handed over. It never touches the database: the sweep leases notifications,
calls the channel, and records the outcome (:mod:`.sweep`).

SMTP settings come from the environment or the ``[smtp]`` table of the
configuration file (``$MSPFLOW_CONFIG``, else ``config.toml`` in the user's
configuration directory); the environment wins::

    [smtp]
    host = "smtp.example.org"      # MSPFLOW_SMTP_HOST
    port = 587                     # MSPFLOW_SMTP_PORT
    security = "starttls"          # MSPFLOW_SMTP_SECURITY: none | starttls | tls
    username = "mspflow"           # MSPFLOW_SMTP_USERNAME
    password_env = "SMTP_PASSWORD" # the password is read from this variable
    sender = "MSP secretariat <msp@example.org>"  # MSPFLOW_SMTP_SENDER
    ca_file = "/etc/ssl/our-ca.pem" # MSPFLOW_SMTP_CA_FILE (optional)
    timeout = 30                   # seconds

The password is never stored in the file itself; ``MSPFLOW_SMTP_PASSWORD``
or the variable named by ``password_env`` holds it.

Two defences keep one bad row from stopping everyone's mail: text that goes
into a header (subject, names) passes through :func:`header_safe`, so no CR or
LF ever reaches a header, and a message that cannot be built or is refused for
good (an address that is not one) is reported as :class:`Permanent`, which the
sweep records as failed instead of retrying it forever.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

from mspflow.config import config_path, read_config
from mspflow.errors import InvalidInput

__all__ = [
    "Channel",
    "ChatChannel",
    "EmailChannel",
    "Guard",
    "Outgoing",
    "Permanent",
    "SmtpConfig",
    "TerminalChannel",
    "apprise_url_error",
    "header_safe",
    "load_smtp_config",
    "message_id",
    "post",
]


@dataclass(frozen=True)
class Outgoing:
    """What a channel needs to send one notification."""

    id: int
    recipient: str
    recipient_name: str | None
    subject: str
    body: str
    message_id: str  # stable across retries, so receivers can drop a duplicate
    date: Any  # datetime, the clock's now


class Permanent(str):
    """An error that retrying will not cure (the message cannot be built, the
    address is not one): the notification is marked failed, not retried."""

    __slots__ = ()


class Guard(Protocol):
    """The sender's lease on the notifications it was handed (see :mod:`.sweep`).

    A channel asks :meth:`begin` right before it hands a message over and sends
    only if it is told yes; it reports each outcome to :meth:`done` at once.
    """

    def begin(self, batch: Sequence[Outgoing]) -> list[Outgoing]:
        """Those of ``batch`` this sender still holds (their lease renewed)."""
        ...

    def done(self, results: dict[int, str | None]) -> None:
        """Record outcomes: None (handed over), an error (retry later) or
        a :class:`Permanent` one."""
        ...


class _Unguarded:
    """For a channel called outside a sweep: everything may go."""

    def begin(self, batch: Sequence[Outgoing]) -> list[Outgoing]:
        return list(batch)

    def done(self, results: dict[int, str | None]) -> None:
        return None


class Channel(Protocol):
    name: str

    def send(self, batch: Sequence[Outgoing], guard: Guard | None = None) -> dict[int, str | None]:
        """Send ``batch``; map each notification id to None (handed over) or an error.

        A notification ``guard`` refused is left out of the answer (another
        sender holds it now)."""
        ...


_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_safe(text: str | None, limit: int = 400) -> str:
    """``text`` as one header line: every run of control characters (CR, LF,
    NUL, tab ...) becomes one space, and it is cut at ``limit`` characters."""
    out = _HEADER_UNSAFE.sub(" ", text or "").strip()
    return out if len(out) <= limit else out[: limit - 1] + "\u2026"


class TerminalChannel:
    """Prints each notification as one line (and is always available)."""

    name = "terminal"

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self.say = say if say is not None else _stdout

    def send(self, batch: Sequence[Outgoing], guard: Guard | None = None) -> dict[int, str | None]:
        guard = guard if guard is not None else _Unguarded()
        held = guard.begin(batch)  # one renewal for the batch: printing is quick
        results: dict[int, str | None] = {}
        for n in held:
            self.say(f"  [{n.date:%Y-%m-%d %H:%M}Z] {header_safe(n.subject)}")
            results[n.id] = None
        guard.done(results)
        return results


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")


# --------------------------------------------------------------------------- chat


class ChatChannel:
    """Posts notifications to chat and webhook services through Apprise (Microsoft
    Teams workflows, Slack, Matrix, a JSON webhook ...): Apprise knows each service's
    API, so a destination is one URL (``json://host/path``, ``slack://...``).

    A notification's recipient is the id of a configured destination; ``urls``
    gives the URLs of a batch's recipients at once (one missing was removed
    meanwhile: a permanent failure). The title is the email's subject and the text
    its body.
    """

    name = "chat"

    def __init__(self, urls: Callable[[Sequence[str]], Mapping[str, str]]) -> None:
        self.urls = urls

    def send(self, batch: Sequence[Outgoing], guard: Guard | None = None) -> dict[int, str | None]:
        guard = guard if guard is not None else _Unguarded()
        results: dict[int, str | None] = {}
        urls = self.urls(sorted({n.recipient for n in batch}))
        for n in batch:
            url = urls.get(n.recipient)
            if url is None:
                results[n.id] = Permanent(f"chat destination {n.recipient} no longer exists")
                guard.done({n.id: results[n.id]})
                continue
            if not guard.begin([n]):  # another sender holds it now
                continue
            results[n.id] = post(url, header_safe(n.subject), n.body)
            guard.done({n.id: results[n.id]})
        return results


def apprise_url_error(url: str) -> str | None:
    """Why ``url`` is no destination Apprise can post to (None: it is one)."""
    import apprise

    if apprise.Apprise.instantiate(url) is None:
        return "not a URL of a service Apprise knows (json://, slack://, matrix:// ...)"
    return None


def post(url: str, title: str, body: str) -> str | None:
    """Post one message; None when the service took it, else why not."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return Permanent("not a URL of a service Apprise knows")
    if sender.notify(title=title, body=body):
        return None
    return "the chat service refused the message or could not be reached"


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # none | starttls | tls
    username: str | None = None
    password: str | None = None
    sender: str = "mspflow <mspflow@localhost>"
    ca_file: str | None = None
    timeout: float = 30.0

    @property
    def domain(self) -> str:
        address = self.sender.rsplit("<", 1)[-1].rstrip(">")
        return address.rsplit("@", 1)[-1] or "mspflow"


def load_smtp_config(env: Mapping[str, str] | None = None) -> SmtpConfig | None:
    """The SMTP settings, or None when no host is configured (email is then off)."""
    env = os.environ if env is None else env
    path = config_path(env)
    values = read_config(path).get("smtp", {})
    for key in ("host", "port", "security", "username", "sender", "ca_file", "timeout"):
        given = env.get(f"MSPFLOW_SMTP_{key.upper()}")
        if given:
            values[key] = given
    if not values.get("host"):
        return None
    where = f"{path}" if path.exists() else "MSPFLOW_SMTP_*"
    try:
        port = int(values.get("port", 587))
        timeout = float(values.get("timeout", 30))
    except ValueError:
        raise InvalidInput(f"{where}: SMTP port and timeout must be numbers") from None
    security = str(values.get("security", "starttls")).lower()
    if security not in ("none", "starttls", "tls"):
        raise InvalidInput(f"{where}: SMTP security '{security}' is not one of none, starttls, tls")
    password = env.get("MSPFLOW_SMTP_PASSWORD")
    if password is None and values.get("password_env"):
        password = env.get(str(values["password_env"]))
    if values.get("username") and password is None:
        raise InvalidInput(
            f"{where}: SMTP username is set but no password",
            hint="set MSPFLOW_SMTP_PASSWORD (or the variable named by smtp.password_env)",
        )
    return SmtpConfig(
        host=str(values["host"]),
        port=port,
        security=security,
        username=values.get("username"),
        password=password,
        sender=str(values.get("sender", SmtpConfig.sender)),
        ca_file=values.get("ca_file"),
        timeout=timeout,
    )


class EmailChannel:
    """Sends each notification as one email; one SMTP session per batch."""

    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file)

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        smtp: smtplib.SMTP
        if c.security == "tls":
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=self._context())
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
        try:
            smtp.ehlo()
            if c.security == "starttls":
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if c.username:
                smtp.login(c.username, c.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def message(self, n: Outgoing) -> EmailMessage:
        """The email for ``n``; :class:`ValueError` if its address is not one."""
        from email.headerregistry import Address

        from mspflow.inputs import email

        try:
            address = email(n.recipient, field="recipient")
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        msg = EmailMessage()
        msg["From"] = self.config.sender
        name = header_safe(n.recipient_name, 200)
        msg["To"] = Address(display_name=name, addr_spec=address) if name else address
        msg["Subject"] = header_safe(n.subject, 900)
        msg["Date"] = format_datetime(n.date)
        msg["Message-ID"] = n.message_id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        msg.set_content(n.body)
        return msg

    def send(self, batch: Sequence[Outgoing], guard: Guard | None = None) -> dict[int, str | None]:
        """One SMTP session for ``batch``; the lease is checked (and renewed)
        right before each message and its outcome recorded right after, so a
        sender that lost its lease stops, and a crash repeats one message at most."""
        guard = guard if guard is not None else _Unguarded()
        results: dict[int, str | None] = {}
        if not batch:
            return results
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            down = f"cannot reach SMTP server {self.config.host}:{self.config.port}: {exc}"
            results = {n.id: down for n in guard.begin(batch)}
            guard.done(results)
            return results
        gone = False
        try:
            for n in batch:
                if not guard.begin([n]):
                    break  # another sender holds it now: this one sends nothing more
                error: str | None
                ended = False
                try:
                    msg = self.message(n)
                except Exception as exc:  # one bad row must not stop the rest
                    error = Permanent(f"cannot build the message: {exc}")
                else:
                    error, ended = self._send_one(smtp, msg)
                results[n.id] = error
                guard.done({n.id: error})
                if ended:
                    gone = True
                    break  # the session is gone; the rest are retried later
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        if gone:
            rest = [n for n in batch if n.id not in results]
            more: dict[int, str | None] = {
                n.id: "not sent: the SMTP session ended early" for n in guard.begin(rest)
            }
            guard.done(more)
            results.update(more)
        return results

    @staticmethod
    def _send_one(smtp: smtplib.SMTP, msg: EmailMessage) -> tuple[str | None, bool]:
        """The error (None when handed over), and whether the session ended."""
        try:
            smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            return f"recipient refused: {exc.recipients}", False
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            return f"{type(exc).__name__}: {exc}", True
        except smtplib.SMTPException as exc:
            return f"{type(exc).__name__}: {exc}", False
        except (UnicodeError, ValueError, TypeError) as exc:
            return Permanent(f"cannot send the message: {type(exc).__name__}: {exc}"), False
        return None, False


def message_id(notification_id: int, key: str, domain: str) -> str:
    """A Message-ID that is the same on every retry of one notification."""
    import hashlib

    digest = hashlib.sha256(f"{notification_id}:{key}".encode()).hexdigest()[:16]
    return f"<mspflow.{notification_id}.{digest}@{domain}>"
