"""How long a large bulk import holds SQLite's write lock, and how long another writer waits.

``python -m benchmarks.import_lock [--rows 100000] [--folder DIR]``

A fresh SQLite database gets two partnerships. One process imports a CSV of
``--rows`` evidence rows into the first; meanwhile a second process records a
lesson on the other partnership every 20 ms and times each write. Printed: the
time spent reading and checking the file (no lock held), the time the import's
write transaction held the lock (from its BEGIN IMMEDIATE to its COMMIT), and
the longest and median wait of the other writer, with how many of its writes
failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import event

KINDS = (
    ("lesson", "text", "Lesson {i}: survey in the dry season"),
    ("objective", "text", "Objective {i}: a water point within 30 minutes"),
    ("health-check", "summary", "Health check {i}: partners keep their word"),
    ("revision", "description", "Revision {i}: two sites moved"),
)


def _setup(folder: Path) -> str:
    from mspflow.auth import Actor
    from mspflow.clock import ManualClock
    from mspflow.definition import find_workflow
    from mspflow.services import Mspflow
    from mspflow.services.users import add_first_user
    from mspflow.store import create_schema, make_engine

    url = f"sqlite:///{folder / 'import-lock.db'}"
    engine = make_engine(url, create_dirs=True)
    create_schema(engine)
    clock = ManualClock(datetime(2027, 1, 4, 9, tzinfo=timezone.utc))
    add_first_user(engine, clock.now(), "ana", None)
    wf = find_workflow("msp-12-step")
    text = Path(wf.source).read_text(encoding="utf-8")
    actor = Actor("ana", "secretariat")
    service = Mspflow(engine=engine, clock=clock, actor=actor)
    for slug in ("bulk", "other"):
        service.partnerships.create(name=slug, workflow=wf, definition_text=text, slug=slug)
    engine.dispose()
    return url


def _write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("kind,text,summary,description\n")  # the older heading: both versions read it
        for i in range(rows):
            kind, column, value = KINDS[i % len(KINDS)]
            cells = {"text": "", "summary": "", "description": ""}
            cells[column] = value.format(i=i)
            out.write(f"{kind},{cells['text']},{cells['summary']},{cells['description']}\n")


def _other_writer(url: str, stop: Any, results: Any) -> None:
    """Record a lesson on 'other' every 20 ms until told to stop; report each write's time."""
    from mspflow.auth import Actor
    from mspflow.clock import SystemClock
    from mspflow.errors import MspflowError
    from mspflow.services import Mspflow
    from mspflow.store import make_engine

    actor = Actor("ana", "secretariat")
    service = Mspflow(engine=make_engine(url), clock=SystemClock(), actor=actor)
    waits: list[float] = []
    failures: list[str] = []
    while not stop.is_set():
        start = time.perf_counter()
        try:
            service.evidence.record(
                partnership="other", kind="lesson", values={"text": "meanwhile"}
            )
        except (MspflowError, Exception) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        waits.append(time.perf_counter() - start)
        time.sleep(0.02)
    results.put((waits, failures))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_lock")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="mspflow-import-lock-"))
    url = _setup(folder)
    csv_path = folder / "rows.csv"
    _write_csv(csv_path, args.rows)

    from mspflow.auth import Actor
    from mspflow.clock import SystemClock
    from mspflow.services import Mspflow
    from mspflow.store import make_engine

    engine = make_engine(url)
    marks: dict[str, float] = {}

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get("mspflow_write"):
            marks["begin"] = time.perf_counter()

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        if "begin" in marks:
            marks["commit"] = time.perf_counter()

    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    other = context.Process(target=_other_writer, args=(url, stop, results))
    other.start()
    time.sleep(2.0)  # let the other writer settle into its rhythm
    service = Mspflow(engine=engine, clock=SystemClock(), actor=Actor("ana", "secretariat"))
    start = time.perf_counter()
    counts = service.evidence.import_file(partnership="bulk", path=csv_path).counts
    end = time.perf_counter()
    time.sleep(0.5)
    stop.set()
    waits, failures = results.get(timeout=120)
    other.join(timeout=60)
    lock = marks["commit"] - marks["begin"]
    print(f"rows imported:              {sum(counts.values()):,} ({counts})")
    print(f"import, all told:           {end - start:.2f} s")
    print(f"  reading and checking:     {marks['begin'] - start:.2f} s (no write lock held)")
    print(f"  write lock held:          {lock:.2f} s (BEGIN IMMEDIATE .. COMMIT)")
    print(f"other writer, {len(waits)} writes: longest {max(waits):.2f} s, "
          f"median {statistics.median(waits) * 1000:.0f} ms, failed {len(failures)}")  # fmt: skip
    for failure in failures[:3]:
        print(f"  {failure}")


if __name__ == "__main__":
    main()
