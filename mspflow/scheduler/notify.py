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
"""

from __future__ import annotations

import os
import smtplib
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol

from mspflow.errors import InvalidInput

__all__ = [
    "Channel",
    "EmailChannel",
    "Outgoing",
    "SmtpConfig",
    "TerminalChannel",
    "config_path",
    "load_smtp_config",
    "message_id",
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


class Channel(Protocol):
    name: str

    def send(self, batch: Sequence[Outgoing]) -> dict[int, str | None]:
        """Send ``batch``; map each notification id to None (handed over) or an error."""
        ...


class TerminalChannel:
    """Prints each notification as one line (and is always available)."""

    name = "terminal"

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self.say = say if say is not None else _stdout

    def send(self, batch: Sequence[Outgoing]) -> dict[int, str | None]:
        for n in batch:
            self.say(f"  [{n.date:%Y-%m-%d %H:%M}Z] {n.subject}")
        return {n.id: None for n in batch}


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")


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


def config_path(env: Mapping[str, str] | None = None) -> Path:
    given = (os.environ if env is None else env).get("MSPFLOW_CONFIG")
    if given:
        return Path(given).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("mspflow", appauthor=False)) / "config.toml"


_SMTP_KEYS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "security": str,
    "username": str,
    "password_env": str,
    "sender": str,
    "ca_file": str,
    "timeout": (int, float),
}


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the configuration: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: {exc}", hint="fix the TOML syntax") from None
    smtp = data.get("smtp", {})
    if not isinstance(smtp, dict):
        raise InvalidInput(f"{path}: [smtp] must be a table")
    for key, value in smtp.items():
        kind = _SMTP_KEYS.get(key)
        if kind is None:
            raise InvalidInput(
                f"{path}: unknown key smtp.{key}", hint="known: " + ", ".join(_SMTP_KEYS)
            )
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidInput(f"{path}: smtp.{key} has the wrong type ({type(value).__name__})")
    return dict(smtp)


def load_smtp_config(env: Mapping[str, str] | None = None) -> SmtpConfig | None:
    """The SMTP settings, or None when no host is configured (email is then off)."""
    env = os.environ if env is None else env
    path = config_path(env)
    values = _read_file(path)
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
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = f"{n.recipient_name} <{n.recipient}>" if n.recipient_name else n.recipient
        msg["Subject"] = n.subject
        msg["Date"] = format_datetime(n.date)
        msg["Message-ID"] = n.message_id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        msg.set_content(n.body)
        return msg

    def send(self, batch: Sequence[Outgoing]) -> dict[int, str | None]:
        results: dict[int, str | None] = {}
        if not batch:
            return results
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            error = f"cannot reach SMTP server {self.config.host}:{self.config.port}: {exc}"
            return {n.id: error for n in batch}
        try:
            for n in batch:
                try:
                    smtp.send_message(self.message(n))
                    results[n.id] = None
                except smtplib.SMTPRecipientsRefused as exc:
                    results[n.id] = f"recipient refused: {exc.recipients}"
                except (OSError, smtplib.SMTPException) as exc:
                    results[n.id] = f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, (OSError, smtplib.SMTPServerDisconnected)):
                        break  # the session is gone; the rest are retried later
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        for n in batch:
            results.setdefault(n.id, "not sent: the SMTP session ended early")
        return results


def message_id(notification_id: int, key: str, domain: str) -> str:
    """A Message-ID that is the same on every retry of one notification."""
    import hashlib

    digest = hashlib.sha256(f"{notification_id}:{key}".encode()).hexdigest()[:16]
    return f"<mspflow.{notification_id}.{digest}@{domain}>"
