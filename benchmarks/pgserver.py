"""A throw-away PostgreSQL server on loopback, for the PostgreSQL figures.

Used only when no ``--pg-url`` (or ``MSPFLOW_BENCH_PG_URL``) is given and the
server programs are installed. The cluster lives under ``.bench-cache/`` so a
generated portfolio survives between runs; it runs with PostgreSQL's default
durability (``fsync=on``, ``synchronous_commit=on``): a committed transaction
is on disk, as with SQLite's ``synchronous=FULL``. PostgreSQL refuses to run
as root, so as root the programs run as the ``postgres`` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import CACHE

__all__ = [
    "create_database",
    "database_exists",
    "database_url",
    "databases",
    "drop_database",
    "find_bindir",
    "pg_server",
    "scratch",
    "server_version",
]

CANDIDATES = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13)]


def find_bindir() -> Path | None:
    for folder in CANDIDATES:
        if (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@contextmanager
def _reserved_port() -> Iterator[int]:
    """A loopback port the kernel chose, held bound until the block ends.

    Nobody asking for a free port is given it meanwhile. The socket sets
    SO_REUSEADDR and never listens, so PostgreSQL (which sets SO_REUSEADDR too)
    can bind and listen on it while it is held: no pick-then-bind race.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def pg_server(say: Callable[[str], None] = print) -> Iterator[str]:
    """Start (initialising on first use) the cached cluster; yield its base URL."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL server programs not found (Debian: apt-get install postgresql)"
        )
    data = CACHE / "pgdata"
    sockets = CACHE / "pgsock"
    for folder in (CACHE, sockets):
        folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(sockets, "postgres")
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres")
        subprocess.run(
            _as_owner(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--no-locale"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    log = sockets / "server.log"
    with _reserved_port() as port:  # held until pg_ctl -w saw the server accept connections
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets} "
            "-c shared_buffers=256MB -c max_wal_size=4GB"
        )
        subprocess.run(
            _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                       "-w", "-t", "60", "start"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        _wait(url)
        say(f"  started PostgreSQL {bindir.parent.name} on 127.0.0.1:{port} (data in {data})")
        yield url
    finally:
        subprocess.run(
            _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )


def _wait(url: str) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(url.replace("postgresql+psycopg", "postgresql") + "/postgres").close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --------------------------------------------------------------------------- databases


def database_url(base: str, name: str) -> str:
    """``base`` (any database on the server) with its database replaced by ``name``."""
    from sqlalchemy.engine import make_url

    return make_url(base).set(database=name).render_as_string(hide_password=False)


def _admin(base: str) -> Any:
    import psycopg

    url = database_url(base, _maintenance_db(base)).replace("postgresql+psycopg", "postgresql")
    return psycopg.connect(url, autocommit=True)


def _maintenance_db(base: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(base).database or "postgres"


def database_exists(base: str, name: str) -> bool:
    with _admin(base) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def databases(base: str, prefix: str) -> list[str]:
    with _admin(base) as conn:
        rows = conn.execute("SELECT datname FROM pg_database").fetchall()
    return [name for (name,) in rows if name.startswith(prefix)]


def create_database(base: str, name: str, template: str | None = None) -> str:
    drop_database(base, name)
    with _admin(base) as conn:
        extra = f" TEMPLATE {template}" if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{extra}')
    return database_url(base, name)


def drop_database(base: str, name: str) -> None:
    with _admin(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version(base: str) -> str:
    with _admin(base) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0]}" if row else "PostgreSQL"


@contextmanager
def scratch(base: str, name: str, template: str | None = None) -> Iterator[str]:
    """A database for one benchmark, dropped afterwards."""
    url = create_database(base, name, template)
    try:
        yield url
    finally:
        drop_database(base, name)
