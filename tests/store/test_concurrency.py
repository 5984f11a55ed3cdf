"""Eight processes on the same three partnerships, on every backend.

Each process advances, revisits and records lessons through the command line
for a few seconds, with ``--expect-version``; a move decided on a stale read
must exit 5 and write nothing, and a retry on a fresh read must go through.
Afterwards every successful operation is in the store exactly once, every
state change has its one event, and the hash chain has not forked.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Engine
from sqlmodel import col, select

from mspflow.definition import Workflow
from mspflow.services import Mspflow
from mspflow.store import models as m
from mspflow.store import read_session
from tests.conftest import Backend
from tests.support.faults import Harness, Job
from tests.support.figures import report
from tests.support.invariants import baseline, check_store
from tests.support.worker import prepare, serve

PROCESSES = 8
SECONDS = 4.0


def test_eight_processes_lose_nothing_and_never_fork_the_chain(
    backend: Backend,
    engine: Engine,
    service: Mspflow,
    msp: Workflow,
    msp_text: str,
) -> None:
    slugs = prepare(service, msp, msp_text, ["Water", "Energy", "Forests"])
    since = baseline(engine)
    with read_session(engine) as s:
        last_seq = max(s.exec(select(m.HistoryEvent.seq)).all())
    url = engine.url.render_as_string(hide_password=False)

    def member(seed: int) -> Job:
        return serve, {"url": url, "slugs": slugs, "seed": seed, "seconds": SECONDS}

    figures = Harness({"secretariat": member}, seed=1, kill_range=None).run(
        parallel=PROCESSES, seconds=60, respawn=False
    )
    assert figures.failures == [] and figures.finished == PROCESSES, figures.failures
    summaries, reported = figures.summaries, figures.reported
    assert len(summaries) == PROCESSES
    total: Counter[str] = Counter()
    for summary in summaries:
        assert summary["unexpected"] == [], summary["unexpected"]
        total.update({k: v for k, v in summary.items() if isinstance(v, int)})
    moves = total["advance"] + total["revisit"]
    assert total["succeeded"] == total["lesson"] + moves
    assert total["attempted"] == total["succeeded"] + total["gave_up"]
    assert total["conflicts"] > 0 and total["retry_succeeded"] > 0, total  # there was contention

    added = check_store(engine, since)
    assert added == {"events": moves, "lessons": total["lesson"]}
    with read_session(engine) as s:
        new = s.exec(select(m.HistoryEvent).where(col(m.HistoryEvent.seq) > last_seq)).all()
    # Exactly the moves the processes were told succeeded, each once, no other.
    assert sorted((e.seq, e.kind, e.partnership) for e in new) == sorted(
        (r["event"], r["kind"], r["id"]) for r in reported if r["kind"] != "lesson"
    )
    report(
        f"concurrency [{backend.name}]: {PROCESSES} processes x {SECONDS:.0f} s on "
        f"{len(slugs)} partnerships: {total['attempted']} operations attempted, "
        f"{total['succeeded']} succeeded ({total['advance']} advance, {total['revisit']} "
        f"revisit, {total['lesson']} lesson), {total['conflicts']} refused with exit 5, "
        f"{total['retried']} retried, {total['retry_succeeded']} succeeded on retry, "
        f"{total['gave_up']} gave up; {len(new)} events appended, chain verified"
    )
