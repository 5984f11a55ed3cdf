"""Run worker processes in parallel, and kill them with SIGKILL at chosen pause points.

A worker is a function ``target(config, conn)`` that speaks the protocol of
:mod:`tests.support.worker` over ``conn`` (``ready``, ``P <label>``,
``R {json}``, ``S {json}``, ``E <traceback>`` out; ``go`` or ``stop`` in). Each
runs in its own OS process, forked from a fork server that imported mspflow
once, so starting one takes milliseconds and a run can afford many kills.

:class:`Harness` keeps ``parallel`` workers running until its time is up,
starting a fresh one (a restart) whenever one is killed or ends. For each
worker it draws, from a seeded RNG, the pause point at which to kill it (some
are drawn never to be killed), so a failing run repeats with the same seed.
``aim`` makes sure a kind of pause point is hit: ``{"commit": 4}`` sends every
fourth worker to its death at its first, second or third ``commit`` pause.

Workers of several kinds can share a run: ``kinds`` maps a name to a function
that, given a seed, returns ``(target, config)`` — say transitions and
scheduler sweeps; kinds take turns.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

__all__ = ["REPO", "Figures", "Harness", "Job", "context"]

REPO = Path(__file__).resolve().parents[2]

#: What a kind of worker runs: the target function and its configuration.
Job = tuple[Callable[[dict[str, Any], Connection], None], dict[str, Any]]

#: Modules the fork server imports once, so that workers start warm.
PRELOAD = [
    "tests.support.worker",
    "mspflow.cli",
    "mspflow.services.facade",
    "mspflow.services.partnerships",
    "mspflow.services.evidence",
    "mspflow.services.database",
    "mspflow.store.migrations",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
]

_context: Any = None


def context() -> Any:
    """The fork-server multiprocessing context, started on first use."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


@dataclass
class Figures:
    """What a run did, for the test's assertions and its printed summary."""

    seed: int
    started: int = 0
    killed: int = 0
    finished: int = 0
    kill_points: Counter[str] = field(default_factory=Counter)
    reported: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self, name: str) -> str:
        where = ", ".join(f"{k} {n}" for k, n in sorted(self.kill_points.items()))
        return (
            f"{name}: seed {self.seed}, {self.started} worker processes, {self.killed} killed "
            f"with SIGKILL, {self.finished} ended normally, {len(self.reported)} operations "
            f"reported done, {self.seconds:.1f} s; killed at: {where or 'nowhere'}"
        )


@dataclass(eq=False)
class _Worker:
    kind: str
    process: Any
    conn: Connection
    kill_at: int | None
    aim: str | None = None  # count only pauses with this label
    points: int = 0
    killed: bool = False


class Harness:
    """Run workers in parallel, killing each at a pause point drawn from ``seed``."""

    def __init__(
        self,
        kinds: Mapping[str, Callable[[int], Job]],
        *,
        seed: int,
        kill_range: tuple[int, int] | None = (1, 200),
        survive: float = 0.1,
        aim: Mapping[str, int] | None = None,
    ) -> None:
        self.kinds = dict(kinds)
        self.aim = dict(aim or {})
        self.rng = random.Random(seed)
        self.kill_range = kill_range
        self.survive = survive
        self.figures = Figures(seed)
        self._names = list(self.kinds)
        self._live: dict[Connection, _Worker] = {}

    def _spawn(self) -> None:
        n = self.figures.started
        kind = self._names[n % len(self._names)]
        kill_at, aim = None, None
        if self.kill_range is not None and self.rng.random() >= self.survive:
            kill_at = self.rng.randint(*self.kill_range)
            for label, every in self.aim.items():
                if n % every == every - 1:  # this one dies at its 1st, 2nd or 3rd `label`
                    kill_at, aim = self.rng.randint(1, 3), label
        target, config = self.kinds[kind](self.rng.randrange(2**32))
        ours, theirs = context().Pipe()
        process = context().Process(target=target, args=(config, theirs), daemon=True)
        process.start()
        theirs.close()
        self.figures.started += 1
        self._live[ours] = _Worker(kind, process, ours, kill_at, aim)

    def run(
        self,
        *,
        parallel: int,
        seconds: float,
        max_kills: int = 0,
        respawn: bool = True,
    ) -> Figures:
        """Until ``seconds`` have passed (or ``max_kills`` kills); then let the rest end.

        The first ``parallel`` workers start together: none is told ``go``
        before all of them are ready.
        """
        started = time.monotonic()
        deadline = started + seconds
        for _ in range(parallel):
            self._spawn()
        first = list(self._live.values())
        waiting: list[_Worker] = []

        def release(ready: _Worker | None) -> None:
            """Hold the first workers until each is ready (or gone), then start them all."""
            if ready is not None:
                waiting.append(ready)
            if all(x in waiting or x.conn not in self._live for x in first):
                for x in waiting:
                    self._answer(x, "go" if more() else "stop")
                first.clear()
                waiting.clear()

        def more() -> bool:
            within = time.monotonic() < deadline
            return within and (not max_kills or self.figures.killed < max_kills)

        while self._live:
            for conn in wait(list(self._live), timeout=120):
                assert isinstance(conn, Connection)
                w = self._live[conn]
                try:
                    message = conn.recv_bytes().decode()
                except (EOFError, OSError):  # the worker ended
                    del self._live[conn]
                    conn.close()
                    self._reap(w)
                    if w in first:
                        release(None)
                    if respawn and more():
                        self._spawn()
                    continue
                if message == "ready" and w in first:
                    release(w)
                    continue
                self._handle(w, message, more())
        self.figures.seconds = time.monotonic() - started
        return self.figures

    @staticmethod
    def _answer(w: _Worker, word: str) -> None:
        with contextlib.suppress(OSError):  # it died meanwhile: noticed on the next read
            w.conn.send_bytes(word.encode())

    def _handle(self, w: _Worker, message: str, more: bool) -> None:
        word, _, rest = message.partition(" ")
        if word == "ready":
            self._answer(w, "go" if more else "stop")
        elif word == "P":
            w.points += 1 if w.aim is None or rest == w.aim else 0
            if w.kill_at == w.points:
                os.kill(w.process.pid, signal.SIGKILL)
                w.killed = True
                self.figures.killed += 1
                self.figures.kill_points[rest or "?"] += 1
            else:
                self._answer(w, "go" if more else "stop")
        elif word == "R":
            self.figures.reported.append({"worker": w.kind, **json.loads(rest)})
        elif word == "S":
            self.figures.summaries.append({"worker": w.kind, **json.loads(rest)})
        else:
            self.figures.failures.append(f"{w.kind}: {message.strip()}")

    def _reap(self, w: _Worker) -> None:
        w.process.join(timeout=30)
        code = w.process.exitcode
        if w.killed:
            assert code == -signal.SIGKILL, code
        elif code == 0:
            self.figures.finished += 1
        else:
            self.figures.failures.append(f"{w.kind} worker exited with {code}")
