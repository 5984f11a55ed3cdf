"""`mspflow demo`, the README's main job: the whole story, on a real SQLite file."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import tempfile
from pathlib import Path

import pytest
from sqlmodel import col, select

from mspflow import history
from mspflow.store import make_engine, read_session
from mspflow.store import models as m
from tests.conftest import invoke


@pytest.fixture(autouse=True)
def _own_temp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's temporary folders go under this test's own, not the machine's /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("tmp")))


def test_the_demo_tells_the_whole_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "demo.db"
    result = invoke("--db", "demo.db", "demo")  # the global --db names the demo's file
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == [db]  # nothing else written in the current folder
    out = result.output
    for line in (
        "[water-kch] advance refused (exit 3):",
        "case-for-partnering (task 1.3) waived with a reason",
        "[png-capacity] revisited step 3",
        "[water-kch] concluded: Transferred to a new institution (task 12.1)",
        "the scheduler moved mekong-forum to step 9",
        "overdue, no minutes of the meeting",
        "conformance: every move of",
    ):
        assert line in out, line
    # What it printed is what the database holds.
    engine = make_engine(f"sqlite:///{db}")
    try:
        with read_session(engine) as s:
            events = list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))
            flags = list(s.exec(select(m.FiredTrigger).where(m.FiredTrigger.purpose == "overdue")))
    finally:
        engine.dispose()
    assert list(history.verify(events)) == []
    moved_by_scheduler = [e for e in events if e.actor == "scheduler"]
    assert len(moved_by_scheduler) == 4 and {e.to_state for e in moved_by_scheduler} == {
        "reviewing"
    }
    assert len(flags) == 1
    assert f"the hash chain of {len(events)} events holds" in out
    exported = re.search(r"export xes: (\S+) ", out)
    assert exported is not None
    xes = Path(exported[1])
    assert xes.parent.parent == Path(tempfile.gettempdir()) and xes.stat().st_size > 0
    assert f"mspflow --db {db} --as amara partnership list" in out
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def _database(path: Path) -> None:
    """A real mspflow database (the kind of file most worth not losing)."""
    assert invoke("--db", str(path), "init", "--admin", "ana").exit_code == 0


def _text(path: Path) -> None:
    path.write_text("notes I keep\n")


def _link(path: Path) -> None:
    target = path.with_name("target.txt")
    target.write_text("what the link points at\n")
    path.symlink_to(target)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _wal_only(path: Path) -> None:
    Path(f"{path}-wal").write_bytes(b"left by a database removed by hand")


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    seen = {}
    for p in sorted(folder.iterdir()):
        st = os.lstat(p)
        body = p.read_bytes() if stat.S_ISREG(st.st_mode) else os.fsencode(str(p.resolve()))
        seen[p.name] = (stat.S_IFMT(st.st_mode), body)
    return seen


@pytest.mark.parametrize(
    "existing", [_database, _text, _link, _fifo, _wal_only], ids=lambda f: f.__name__[1:]
)
@pytest.mark.parametrize("form", ["option", "global"])
def test_the_demo_replaces_nothing_it_was_not_told_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: object, form: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "demo.db"
    existing(path)  # type: ignore[operator]
    before = _snapshot(tmp_path)
    args = ("demo", "--db", str(path)) if form == "option" else ("--db", str(path), "demo")
    result = invoke(*args)
    assert result.exit_code == 7, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "--force" in lines[0], lines
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("make", [_fifo, os.mkdir], ids=["fifo", "folder"])
def test_force_replaces_only_a_regular_file(tmp_path: Path, make: object) -> None:
    path = tmp_path / "demo.db"
    make(path)  # type: ignore[operator]
    before = _snapshot(tmp_path)
    result = invoke("demo", "--db", str(path), "--force")
    assert result.exit_code in (2, 7), result.output  # a folder is refused by click itself
    assert _snapshot(tmp_path) == before


def test_force_on_a_device_leaves_it_a_device(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    result = invoke("demo", "--db", str(null), "--force")
    assert result.exit_code == 7 and "not a regular file" in result.output
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_force_replaces_a_file_with_the_demo_database(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    _text(path)
    Path(f"{path}-wal").write_bytes(b"stale")  # would not fit the new file
    result = invoke("demo", "--db", str(path), "--force")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.db"]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM partnership").fetchone() == (5,)
    finally:
        conn.close()


def test_two_different_demo_databases_are_a_usage_error(tmp_path: Path) -> None:
    result = invoke("--db", str(tmp_path / "a.db"), "demo", "--db", str(tmp_path / "b.db"))
    assert result.exit_code == 2 and list(tmp_path.iterdir()) == []
