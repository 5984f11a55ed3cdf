"""SIGKILL at random points of transitions, on every backend.

Worker processes advance, revisit and record lessons in lockstep with the
test, which kills each one with SIGKILL at a pause point drawn from a seeded
RNG: before a statement (mid-transaction), before a commit, or after an
operation finished. Killed workers are replaced by fresh ones (a restart) until
the time is up. Afterwards, from new processes: every invariant of
``tests.support.invariants`` holds, every operation a worker reported done is
still there, ``mspflow audit verify`` accepts the chain, and the partnerships
can still be moved. ``MSPFLOW_FAULT_SEED`` repeats a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import Engine, text
from sqlmodel import col, select

from mspflow.definition import Workflow
from mspflow.services import Mspflow
from mspflow.store import models as m
from mspflow.store import read_session, write_session
from tests.conftest import Backend
from tests.support.faults import REPO, Harness, Job
from tests.support.figures import report
from tests.support.invariants import baseline, check_store
from tests.support.worker import prepare, serve

#: A worker that hangs (a lock never released, a pipe never answered) fails the
#: test after this long instead of holding up the run: the kills take SECONDS,
#: the run after them at most a minute.
pytestmark = pytest.mark.timeout(400)

SECONDS = 10.0
PARALLEL = 3
MAX_KILLS = 30


def test_sigkill_during_transitions_loses_nothing(
    backend: Backend,
    engine: Engine,
    service: Mspflow,
    msp: Workflow,
    msp_text: str,
) -> None:
    slugs = prepare(service, msp, msp_text, ["Water", "Energy"])
    since = baseline(engine)
    url = engine.url.render_as_string(hide_password=False)
    seed = int(os.environ.get("MSPFLOW_FAULT_SEED", "2027"))

    def transitions(worker_seed: int) -> Job:
        config = {"url": url, "slugs": slugs, "seed": worker_seed, "lockstep": True}
        return serve, {**config, "operations": 6}

    harness = Harness(
        {"transitions": transitions}, seed=seed, kill_range=(1, 40), aim={"commit": 4}
    )
    figures = harness.run(parallel=PARALLEL, seconds=SECONDS, max_kills=MAX_KILLS)
    assert figures.failures == [], figures.failures
    assert figures.killed >= 10, figures.line("too few kills")
    assert figures.kill_points["commit"] > 0, figures.kill_points
    for summary in figures.summaries:
        assert summary["unexpected"] == [], summary["unexpected"]

    # Restart: everything below runs in processes that never saw the crashes.
    added = check_store(engine, since)
    with read_session(engine) as s:
        events = {
            e.seq: e for e in s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq)))
        }
    done_moves = [r for r in figures.reported if r["kind"] != "lesson"]
    for r in done_moves:  # a move reported done survived its worker's death
        assert (events[r["event"]].kind, events[r["event"]].partnership) == (r["kind"], r["id"])
    assert added["lessons"] >= sum(r["kind"] == "lesson" for r in figures.reported)
    assert added["events"] >= len(done_moves)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    audit = subprocess.run(
        [sys.executable, "-m", "mspflow", "--db", url, "--as", "ivo", "audit", "verify", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert audit.returncode == 0, audit.stderr
    assert json.loads(audit.stdout)["events"] == len(events)

    def unpaused(worker_seed: int) -> Job:
        return serve, {"url": url, "slugs": slugs, "seed": worker_seed, "operations": 4}

    after = Harness({"after": unpaused}, seed=seed, kill_range=None).run(
        parallel=2, seconds=60, respawn=False
    )
    assert after.failures == [] and after.finished == 2, after.failures
    for summary in after.summaries:
        assert summary["unexpected"] == [] and summary["succeeded"] == 4, summary
    check_store(engine, since)
    report(
        figures.line(f"faults [{backend.name}]")
        + f"; afterwards {added['events']} events and {added['lessons']} lessons kept, "
        "invariants hold, audit verify ok"
    )


def test_the_invariants_catch_what_a_crash_could_leave(
    engine: Engine, service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    """The checks above can fail: a state change without its event, a lost write."""
    [slug] = prepare(service, msp, msp_text, ["Water"])
    since = baseline(engine)
    service.partnerships.move(partnership=slug, kind="advance")
    assert check_store(engine, since) == {"events": 1, "lessons": 0}
    with write_session(engine) as s:
        s.execute(text("UPDATE partnership SET state = 'planning' WHERE slug = :s"), {"s": slug})
    with pytest.raises(AssertionError, match="its last event ended at agenda-setting"):
        check_store(engine, since)
    with write_session(engine) as s:
        s.execute(
            text(
                "UPDATE partnership SET state = 'agenda-setting-and-scoping', "
                "version = version + 1 WHERE slug = :s"
            ),
            {"s": slug},
        )
    with pytest.raises(AssertionError, match="but 1 event"):
        check_store(engine, since)
