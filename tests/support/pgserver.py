"""A throwaway PostgreSQL server for one test session.

The server runs from Debian's ``postgresql`` package binaries (any major
version; ``MSPFLOW_PG_BIN`` names another directory), in a temporary directory,
listening on 127.0.0.1 only, on a port the kernel chose and this module holds
until the server listens on it (no pick-then-bind race), with trust
authentication and no Unix socket. PostgreSQL refuses to run as root, so under root (CI, containers)
it runs as the ``postgres`` user the package creates.

The data directory goes to ``/dev/shm`` when it has room (memory-backed: a
``CREATE DATABASE`` takes milliseconds there instead of a fraction of a second on
a virtual disk), else to the system's temporary directory; ``MSPFLOW_PG_TMP``
chooses another place. Settings are PostgreSQL's defaults otherwise (``fsync``
on).

Each test gets its own database (``CREATE DATABASE``), dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import count
from pathlib import Path
from typing import Any

__all__ = ["PgServer", "PgUnavailable", "find_bin_dir", "listening_port", "reserved_port"]

RUN_AS = "postgres"


class PgUnavailable(Exception):
    """The server cannot be started here; the message says why, in one line."""


def find_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl (only ``MSPFLOW_PG_BIN`` when set)."""
    given = os.environ.get("MSPFLOW_PG_BIN")
    candidates = [Path(given)] if given else []
    on_path = shutil.which("pg_ctl")
    if on_path and not given:
        candidates.append(Path(on_path).resolve().parent)

    def major(path: str) -> int:
        part = Path(path).parent.name
        return int(part) if part.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    candidates += [] if given else [Path(p) for p in found]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise PgUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) found; install Debian's 'postgresql' "
        "package (scripts/system-deps.sh does it as root) or set MSPFLOW_PG_BIN"
    )


@contextmanager
def reserved_port() -> Iterator[int]:
    """A loopback port, held bound from the moment it is chosen until the block ends.

    The kernel chooses the port (bind to 0) and this socket keeps it: nobody
    asking for a free port is given it meanwhile. The socket sets SO_REUSEADDR
    and never listens, so a server that also sets SO_REUSEADDR (PostgreSQL does,
    on every TCP socket) can bind and listen on the same port while it is held;
    Linux refuses that pair only once one of them listens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def listening_port(data: Path) -> int:
    """The port the running server in ``data`` says it listens on (postmaster.pid, line 4)."""
    lines = (data / "postmaster.pid").read_text().splitlines()
    if len(lines) < 4 or not lines[3].strip().isdigit():
        raise PgUnavailable(f"the server's {data / 'postmaster.pid'} names no port")
    return int(lines[3])


def _scratch_dir() -> str | None:
    given = os.environ.get("MSPFLOW_PG_TMP")
    if given:
        return given
    shm = "/dev/shm"
    try:
        stat = os.statvfs(shm)
    except OSError:
        return None
    roomy = stat.f_bavail * stat.f_frsize >= 1 << 30
    return shm if roomy and os.access(shm, os.W_OK) else None


class PgServer:
    """One running server; :meth:`create_database` hands out fresh databases."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.port = 0
        self.root: Path | None = None
        self._ids = count(1)
        self._user: dict[str, Any] = {}
        self._conn: Any = None

    # -- life cycle ------------------------------------------------------------
    def start(self) -> PgServer:
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise PgUnavailable(
                    f"running as root and there is no '{RUN_AS}' user to run the server as"
                ) from None
            self._user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.root = Path(tempfile.mkdtemp(prefix="mspflow-pg-", dir=_scratch_dir()))
        if self._user:
            os.chown(self.root, self._user["user"], self._user["group"])
        data = self.root / "data"
        self._run(
            "initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# mspflow test server\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
            )
        with reserved_port() as port:  # held until the server listens on it
            try:
                self._run(
                    "pg_ctl", "-D", str(data), "-l", str(self.root / "server.log"), "-w",
                    "-t", "60", "-o", f"-p {port}", "start",
                )  # fmt: skip
            except PgUnavailable as exc:
                raise PgUnavailable(f"the server did not start: {exc}") from None
        self.port = listening_port(data)
        import psycopg

        try:
            self._conn = psycopg.connect(self.dsn("postgres"), autocommit=True)
        except psycopg.Error as exc:
            raise PgUnavailable(f"cannot connect to the server it started: {exc}") from None
        return self

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.root is not None:
            with suppress(PgUnavailable):  # it was not running
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _run(self, program: str, *args: str) -> None:
        assert self.root is not None
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            capture_output=True,
            text=True,
            check=False,
            **self._user,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            detail = " | ".join([*result.stderr.strip().splitlines()[-3:], *tail])
            raise PgUnavailable(f"{program} failed ({result.returncode}): {detail}")

    # -- databases -------------------------------------------------------------
    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        """A new database (a copy of ``template`` if given); returns its name."""
        name = name or f"mspflow_test_{next(self._ids)}"
        if template is None:
            self._conn.execute(f'CREATE DATABASE "{name}"')
        else:
            # A copy needs the source to itself: end sessions a test left open
            # (an engine not yet garbage-collected, say).
            self._conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (template,),
            )
            self._conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        self._conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextmanager
    def database(self) -> Iterator[str]:
        name = self.create_database()
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)


def name_of(url: str) -> str:
    """The database name in a URL this server handed out."""
    return url.rsplit("/", 1)[1]
