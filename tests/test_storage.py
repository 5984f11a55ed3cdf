"""Storage faults: every command answers exit 9 with one line naming the database, and
nothing stored changes. Real files, real file systems (a small tmpfs, a read-only
mount, as root) and the test session's real PostgreSQL server."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

import mspflow.store.db as store_db
from mspflow.store import is_in_memory, redact, resolve_url
from tests.conftest import invoke
from tests.support.pgserver import PgServer

NOW = "2027-01-04T09:00:00Z"

#: Commands of every kind that open the database: reads, writes, audits, set-up.
COMMANDS: list[tuple[str, ...]] = [
    ("partnership", "list"),
    ("partnership", "show", "water"),
    ("partnership", "create", "Another", "--id", "another"),
    ("history", "water"),
    ("user", "list"),
    ("user", "add", "zoe", "--role", "auditor"),
    ("advance", "water"),
    ("record", "sdg", "water", "6.1"),
    ("schedule", "status"),
    ("remind", "outbox"),
    ("audit", "verify"),
    ("audit", "export", "--format", "csv"),
    ("db", "current"),
    ("db", "upgrade"),
    ("init", "--admin", "ana"),
]


def run(url: str, *args: str, actor: str = "ana", home: Path | None = None) -> Result:
    env = {"MSPFLOW_DATABASE_URL": url, "MSPFLOW_ACTOR": actor, "MSPFLOW_NOW": NOW}
    if home is not None:
        env["HOME"] = str(home)
    return invoke(*args, env=env)


def one_line(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mspflow: "), lines
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_db(path: Path) -> str:
    """A database at ``path`` with the user ana and the partnership water."""
    url = f"sqlite:///{path}"
    assert run(url, "init", "--admin", "ana").exit_code == 0
    assert run(url, "partnership", "create", "Safe water", "--id", "water").exit_code == 0
    return url


def counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return (
            conn.execute("SELECT count(*) FROM partnership").fetchone()[0],
            conn.execute("SELECT count(*) FROM history_event").fetchone()[0],
        )
    finally:
        conn.close()


# --------------------------------------------------------------------------- not a database


def _text(path: Path) -> None:
    path.write_text("name,role\nana,secretariat\n")


def _random(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 64)


def _damaged(path: Path) -> None:
    """A real mspflow database whose pages after the header were overwritten."""
    make_db(path)
    data = bytearray(path.read_bytes())
    data[100:] = bytes((i * 7) % 251 for i in range(len(data) - 100))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("spoil", [_text, _random, _damaged], ids=["text", "bytes", "damaged"])
def test_a_file_that_is_not_a_database_gets_exit_9_on_every_command(
    tmp_path: Path, spoil: object
) -> None:
    path = tmp_path / "msp.db"
    spoil(path)  # type: ignore[operator]
    before = digest(path)
    for args in COMMANDS:
        result = run(f"sqlite:///{path}", *args)
        assert result.exit_code == 9, (args, result.output)
        assert str(path) in one_line(result), args
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msp.db"]


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_as_database_is_refused_and_left_alone(tmp_path: Path, kind: str) -> None:
    """Nothing reads a FIFO (it would hang), writes a device or puts -wal/-shm beside them."""
    path = tmp_path / "msp.db"
    if kind == "fifo":
        os.mkfifo(path)
    elif os.geteuid() == 0:  # a twin of /dev/null
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        pytest.skip("making a device node needs root")
    mode = stat.S_IFMT(os.stat(path).st_mode)
    for args in COMMANDS:
        result = run(f"sqlite:///{path}", *args)
        assert result.exit_code == 9, (args, result.output)
        assert f"{path} is not a database file" in one_line(result), args
    assert stat.S_IFMT(os.stat(path).st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msp.db"]


def test_an_empty_file_is_only_made_a_database_by_init(tmp_path: Path) -> None:
    path = tmp_path / "msp.db"
    path.touch()
    for args in COMMANDS[:-1]:
        result = run(f"sqlite:///{path}", *args)
        assert result.exit_code == 9, (args, result.output)
        assert f"{path} is an empty file" in one_line(result), args
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["msp.db"]
    assert run(f"sqlite:///{path}", "init", "--admin", "ana").exit_code == 0


@pytest.mark.parametrize(
    ("given", "code", "says"),
    [
        ("", 7, "named by an empty value (name a database file or URL) [--db"),
        ("msp\x00.db", 7, "NUL character"),
        ("/tmp/" + "d" * 5000 + "/msp.db", 9, "File name too long"),
        ("/tmp/" + "f" * 300 + ".db", 9, "File name too long"),
    ],
    ids=["empty", "nul", "long-path", "long-name"],
)
def test_a_bad_db_value_gets_one_short_line(given: str, code: int, says: str) -> None:
    for args in (("partnership", "list"), ("audit", "verify"), ("init", "--admin", "ana")):
        result = invoke("--db", given, *args, env={"MSPFLOW_ACTOR": "ana"})
        assert result.exit_code == code, (args, result.output)
        line = one_line(result)
        assert says in line and len(line) < 400, line


def test_a_folder_as_database_gets_exit_9(tmp_path: Path) -> None:
    result = run(str(tmp_path), "partnership", "list")
    assert result.exit_code == 9 and "is a folder" in one_line(result)


# --------------------------------------------------------------------------- mounts (root)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``folder`` (root only; the test skips elsewhere)."""
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def test_a_read_only_database_is_audited_read_and_never_written(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "8m") as folder:
        path = folder / "msp.db"
        make_db(path)
        url = f"sqlite:///{path}"
        before = (digest(path), counts(path))
        remount(folder, "ro")
        for args in (
            ("audit", "verify"),
            ("audit", "log"),
            ("audit", "export", "--format", "csv"),
            ("audit", "conformance"),
            ("partnership", "show", "water"),  # reads work too
        ):
            result = run(url, *args)
            assert result.exit_code == 0, (args, result.output)
        assert "history verified: 1 events" in run(url, "audit", "verify").output
        for args in (
            ("partnership", "create", "Another"),
            ("record", "sdg", "water", "6.1"),
            ("user", "add", "zoe", "--role", "auditor"),
        ):
            result = run(url, *args)
            assert result.exit_code == 9, (args, result.output)
            assert f"the database {path} is read-only; nothing was written" in one_line(result)
        assert "already exists" in run(url, "init", "--admin", "ana").output  # nothing to write
        assert sorted(p.name for p in folder.iterdir()) == ["msp.db"]  # no -wal, no -shm
        assert (digest(path), counts(path)) == before


@contextlib.contextmanager
def unwritable(target: Path) -> Iterator[None]:
    """``target`` (a file or a folder) made unwritable for this process: by its mode for
    a normal user; for root, whom modes do not stop, by the immutable attribute."""
    if os.geteuid() != 0:
        mode = target.stat().st_mode
        target.chmod(0o555 if target.is_dir() else 0o444)
        try:
            yield
        finally:
            target.chmod(mode)
        return
    done = subprocess.run(["chattr", "+i", str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make {target} immutable here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)


@pytest.mark.parametrize("read_only", ["file", "folder"])
def test_a_database_it_may_not_write_is_audited_and_left_as_it_was(
    tmp_path: Path, read_only: str
) -> None:
    """The issue's case: a file (or a folder) mspflow may read but not write."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "msp.db"
    url = make_db(path)
    before = (digest(path), counts(path))
    with unwritable(path if read_only == "file" else folder):
        assert not os.access(path if read_only == "file" else folder, os.W_OK)
        for args in (("audit", "verify"), ("audit", "export", "--format", "csv")):
            result = run(url, *args)
            assert result.exit_code == 0, (args, result.output)
        assert "history verified: 1 events" in run(url, "audit", "verify").output
        result = run(url, "partnership", "create", "Another")
        assert result.exit_code == 9, result.output
        assert one_line(result) == (
            f"mspflow: the database {path} is read-only; nothing was written (audit commands "
            "can read it; to change it, make the file and its folder writable)"
        )
        assert sorted(p.name for p in folder.iterdir()) == ["msp.db"]  # no -wal, no -shm
    assert (digest(path), counts(path)) == before


def test_a_full_disk_gets_exit_9_and_nothing_is_written(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "2m") as folder:
        path = folder / "msp.db"
        url = make_db(path)
        before = counts(path)
        filler = folder / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        for args in (
            ("partnership", "create", "Another"),
            ("record", "sdg", "water", "6.1"),
            ("user", "add", "zoe", "--role", "auditor"),
        ):
            result = run(url, *args)
            assert result.exit_code == 9, (args, result.output)
            assert f"the disk holding {path} is full; nothing was written" in one_line(result)
        filler.unlink()
        assert counts(path) == before
        assert run(url, "audit", "verify").exit_code == 0
        assert run(url, "partnership", "create", "Another").exit_code == 0  # space again


def test_init_in_a_folder_it_cannot_create_gets_exit_9(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m") as folder:
        remount(folder, "ro")
        result = run(f"sqlite:///{folder / 'new' / 'msp.db'}", "init", "--admin", "ana")
        assert result.exit_code == 9 and "cannot create the folder" in one_line(result)


# --------------------------------------------------------------------------- busy


def test_a_writer_that_times_out_on_the_lock_gets_database_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "msp.db"
    url = make_db(path)
    before = counts(path)
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 50)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process mid-write
        result = run(url, "partnership", "create", "Another")
        assert result.exit_code == 9, result.output
        line = one_line(result)
        assert "database busy" in line and str(path) in line and "retry" in line
        assert run(url, "partnership", "show", "water").exit_code == 0  # readers go on
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert counts(path) == before


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?cache=shared"]
)
def test_init_refuses_an_in_memory_database(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert is_in_memory(url)
    result = run(url, "init", "--admin", "ana")
    assert result.exit_code == 7, result.output
    assert "in-memory database" in one_line(result)
    assert run(url, "partnership", "list").exit_code == 7
    assert list(tmp_path.iterdir()) == []


def test_a_tilde_means_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    for given, name in (("sqlite:///~/a.db", "a.db"), ("~/b.db", "b.db")):
        assert resolve_url(given) == f"sqlite:///{home / name}"
        result = invoke("--db", given, "init", "--admin", "ana", env={"HOME": str(home)})
        assert result.exit_code == 0, result.output
        assert f"database ready at {home / name}" in result.output
        assert (home / name).is_file()
    assert list(work.iterdir()) == []  # no folder named '~'


def test_redact_hides_passwords() -> None:
    assert redact("postgresql+psycopg://u:S3CRET@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert "S3CRET" not in redact("postgresql+psycopg://u@h/d?password=S3CRET")
    assert redact("sqlite:///:memory:") == "sqlite:///:memory:"


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A new, empty database on the test session's PostgreSQL server."""
    with pg_server.database() as url:
        yield url


@pytest.mark.postgres
def test_postgresql_passwords_are_never_printed(pg_url: str) -> None:
    db_url = pg_url
    secret = "Tr0ub4dor-SECRET"
    url = db_url.replace("postgres@", f"postgres:{secret}@")  # the test server trusts loopback
    result = run(url, "init", "--admin", "ana")
    assert result.exit_code == 0, result.output
    assert secret not in result.output and "postgres:***@" in result.output
    for args in (("db", "current"), ("partnership", "list"), ("audit", "verify")):
        result = run(url, *args)
        assert result.exit_code == 0 and secret not in result.output, (args, result.output)


@pytest.mark.postgres
def test_postgresql_login_refused_gets_exit_9_with_the_url_redacted(pg_url: str) -> None:
    secret = "Tr0ub4dor-SECRET"
    url = pg_url.replace("postgres@", f"no_such_role:{secret}@")
    for args in (("init", "--admin", "ana"), ("partnership", "list"), ("audit", "verify")):
        result = run(url, *args)
        assert result.exit_code == 9, (args, result.output)
        line = one_line(result)
        assert secret not in line and "no_such_role:***@" in line and "cannot log in" in line
    # What the server says back (here the role name, equal to the password) is scrubbed too.
    result = run(pg_url.replace("postgres@", f"{secret}:{secret}@"), "partnership", "list")
    assert result.exit_code == 9 and 'role "***" does not exist' in result.output, result.output


def test_postgresql_connection_refused_gets_exit_9_with_the_url_redacted() -> None:
    secret = "Tr0ub4dor-SECRET"
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        url = f"postgresql+psycopg://mspflow:{secret}@127.0.0.1:{port}/mspflow"
        for args in COMMANDS:
            result = run(url, *args)
            assert result.exit_code == 9, (args, result.output)
            line = one_line(result)
            assert secret not in line and f"mspflow:***@127.0.0.1:{port}" in line, line
            assert "Connection refused" in line
