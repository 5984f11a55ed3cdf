"""A secretariat member in a process of their own, for the concurrency and fault tests.

:func:`serve` runs in a child process (started by :mod:`tests.support.faults`
from a fork server that has imported mspflow already, so a new worker is ready
in milliseconds). It records lessons and advances or revisits a few
partnerships through the real command line (click's ``main`` called
in-process), reading each partnership's state and version first and passing
``--expect-version``; a refused move (exit 5) is retried after a fresh read.

``config["ops"]`` names what it draws from (default: a lesson or one of two
moves); ``waive`` waives a criterion of the step the partnership was read at,
also with ``--expect-version``, and reports that step with the event.

It talks to the test over a pipe, one message at a time:

* ``ready`` once set up; it then waits for ``go`` (or ``stop``);
* ``R {json}`` after each operation that exited 0 (what it did, the event);
* ``S {json}`` at the end: its counts; ``E <traceback>`` if it failed.

In ``lockstep`` mode (the fault tests) it also stops at *pause points*:
before every statement and the commit of each write transaction, and after
every operation, it sends ``P <label>`` and waits for ``go`` (carry on) or ``stop`` (no more
pauses; finish this operation and end). The test answers, or kills it with
SIGKILL right there. Any function that speaks this protocol through a
:class:`Channel` can be driven by :mod:`tests.support.faults`;
:func:`pause_points` installs the points on every engine of the process.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["Channel", "pause_points", "prepare", "serve"]

#: The steps the workers move between: advance 1 -> 2 -> 3, revisit back to 1 or 2.
PLAN: dict[str, list[tuple[str, str | None]]] = {
    "getting-started": [("advance", None)],
    "agenda-setting-and-scoping": [("advance", None), ("revisit", "1")],
    "building-relationships": [("revisit", "1"), ("revisit", "2")],
}


def prepare(service: Any, wf: Any, wf_text: str, names: list[str]) -> list[str]:
    """Partnerships at step 1 holding the evidence of steps 1 and 2, so that every
    move in :data:`PLAN` passes its gate; returns their ids."""
    from mspflow.auth import Actor
    from mspflow.walk import WALK, record_piece

    ana = Actor("ana", "secretariat")
    slugs = []
    for name in names:
        slug = (
            service.as_user(ana)
            .partnerships.create(name=name, workflow=wf, definition_text=wf_text)
            .id
        )
        for step in (1, 2):
            for records in WALK[step].values():
                record_piece(service.as_user(ana), slug, records)
        slugs.append(slug)
    return slugs


class Channel:
    """The worker's end of the pipe to the test."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pausing = False

    def send(self, message: str) -> None:
        self.conn.send_bytes(message.encode())

    def wait(self) -> str:
        try:
            return self.conn.recv_bytes().decode()
        except EOFError:  # the test went away: stop
            return "stop"

    def pause(self, label: str) -> None:
        if self.pausing:
            self.send(f"P {label}")
            if self.wait() != "go":
                self.pausing = False


def pause_points(channel: Channel) -> None:
    """Pause before every statement and the commit of every write transaction
    (``write_session``: where transitions and evidence are written), on every engine."""
    from sqlalchemy import Engine, event

    def writing(conn: Any) -> bool:
        return bool(conn.get_execution_options().get("mspflow_write"))

    def before_execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if writing(conn):
            channel.pause("sql " + statement.split(maxsplit=1)[0].upper())

    def before_commit(conn: Any) -> None:
        if writing(conn):
            channel.pause("commit")

    event.listen(Engine, "before_cursor_execute", before_execute)
    event.listen(Engine, "commit", before_commit)


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def _cli(url: str, *args: str) -> tuple[int, str]:
    """One command through mspflow's CLI, in this process: (exit code, output)."""
    from mspflow.cli import main

    code = 0
    with _captured() as out:
        try:
            argv = ["--db", url, "--as", "ana", *args]
            main.main(argv, prog_name="mspflow", standalone_mode=False)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue()


def run(config: dict[str, Any], channel: Channel) -> dict[str, Any]:
    from sqlalchemy import text

    from mspflow.store import make_engine

    url: str = config["url"]
    slugs: list[str] = config["slugs"]
    rng = random.Random(config["seed"])
    engine = make_engine(url)
    counts: dict[str, Any] = {
        "attempted": 0,
        "succeeded": 0,
        "lesson": 0,
        "advance": 0,
        "revisit": 0,
        "waive": 0,
        "waive_conflicts": 0,
        "conflicts": 0,
        "retried": 0,
        "retry_succeeded": 0,
        "gave_up": 0,
        "unexpected": [],
    }

    def read(slug: str) -> tuple[str, int]:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT state, version FROM partnership WHERE slug = :s"), {"s": slug}
            ).one()
        return str(row[0]), int(row[1])

    def done(kind: str, slug: str, output: str, **more: Any) -> None:
        counts["succeeded"] += 1
        counts[kind] += 1
        data = json.loads(output) if kind != "lesson" else {}
        report = {"kind": kind, "id": slug, "event": data.get("event"), **more}
        channel.send("R " + json.dumps(report))

    def lesson(slug: str) -> None:
        counts["attempted"] += 1
        code, out = _cli(url, "record", "lesson", slug, f"lesson {rng.random():.6f}", "--json")
        if code == 0:
            done("lesson", slug, out)
        else:
            counts["unexpected"].append([code, out.strip()])

    def move(slug: str) -> None:
        counts["attempted"] += 1
        for attempt in range(config.get("retries", 20) + 1):
            if attempt:
                counts["retried"] += 1
            state, version = read(slug)
            kind, dest = rng.choice(PLAN[state])
            args = [kind, slug, *([dest, "--reason", "revisited"] if dest else [])]
            code, out = _cli(url, *args, "--expect-version", str(version), "--json")
            if code == 0:
                counts["retry_succeeded"] += 1 if attempt else 0
                done(kind, slug, out)
                return
            if code != 5:
                counts["unexpected"].append([code, out.strip()])
                return
            counts["conflicts"] += 1
        counts["gave_up"] += 1

    def waive(slug: str) -> None:
        from mspflow.definition import find_workflow

        wf = find_workflow(config.get("workflow", "msp-12-step"))
        counts["attempted"] += 1
        for attempt in range(config.get("retries", 20) + 1):
            if attempt:
                counts["retried"] += 1
            state, version = read(slug)
            criterion = rng.choice([c.id for c in wf.step(state).gate])
            code, out = _cli(
                url,
                "waive",
                slug,
                criterion,
                "--reason",
                f"decided at {state} v{version}",
                "--expect-version",
                str(version),
                "--json",
            )
            if code == 0:
                counts["retry_succeeded"] += 1 if attempt else 0
                done("waive", slug, out, state=state, criterion=criterion)
                return
            if code != 5:
                counts["unexpected"].append([code, out.strip()])
                return
            counts["conflicts"] += 1
            counts["waive_conflicts"] += 1
        counts["gave_up"] += 1

    named: dict[str, Callable[[str], None]] = {"lesson": lesson, "move": move, "waive": waive}
    ops = [named[name] for name in config.get("ops", ["lesson", "move", "move"])]
    channel.send("ready")
    start = channel.wait()
    if start != "go":
        return counts
    channel.pausing = bool(config.get("lockstep"))
    deadline = time.monotonic() + float(config.get("seconds", 1e9))
    for _ in range(int(config.get("operations", 10**9))):
        if time.monotonic() >= deadline:
            break
        rng.choice(ops)(rng.choice(slugs))
        channel.pause("operation done")
        if config.get("lockstep") and not channel.pausing:
            break  # told to stop
    engine.dispose()
    return counts


def serve(config: dict[str, Any], conn: Connection) -> None:
    """A worker's whole life: set up, run, report (the target of a child process)."""
    channel = Channel(conn)
    try:
        if config.get("lockstep"):
            pause_points(channel)
        counts = run(config, channel)
        channel.pausing = False
        channel.send("S " + json.dumps(counts))
    except BaseException:
        channel.pausing = False
        channel.send("E " + traceback.format_exc())
        raise
