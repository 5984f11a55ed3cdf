"""Waivers racing moves: eight processes on the same two partnerships, on every backend.

Each process waives criteria of the step it reads a partnership at, or
advances and revisits it, through the command line with ``--expect-version``.
A waiver must either be refused with exit 5 (the partnership changed since it
was read) or record the step the partnership was really at: a waive event
naming a step the partnership had already left is what ``audit conformance``
reports as a state mismatch. Afterwards conformance passes, every operation
the processes were told succeeded is in the history exactly once, and the
store's invariants hold.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import Engine
from sqlmodel import col, select

from mspflow.audit import conformance
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
OPERATIONS = 12  # per process: a fixed count, so that a loaded machine still races


def test_a_waive_racing_moves_exits_5_or_records_the_step_it_was_in(
    backend: Backend,
    engine: Engine,
    service: Mspflow,
    msp: Workflow,
    msp_text: str,
) -> None:
    slugs = prepare(service, msp, msp_text, ["Water", "Energy"])
    since = baseline(engine)
    with read_session(engine) as s:
        last_seq = max(s.exec(select(m.HistoryEvent.seq)).all())
    url = engine.url.render_as_string(hide_password=False)

    def member(seed: int) -> Job:
        config = {
            "url": url,
            "slugs": slugs,
            "seed": seed,
            "operations": OPERATIONS,
            "ops": ["waive", "waive", "move"],
            "workflow": msp.name,
        }
        return serve, config

    figures = Harness({"secretariat": member}, seed=11, kill_range=None).run(
        parallel=PROCESSES, seconds=120, respawn=False
    )
    assert figures.failures == [] and figures.finished == PROCESSES, figures.failures
    total: Counter[str] = Counter()
    for summary in figures.summaries:
        assert summary["unexpected"] == [], summary["unexpected"]  # only exit 0 or 5
        total.update({k: v for k, v in summary.items() if isinstance(v, int)})
    waives = [r for r in figures.reported if r["kind"] == "waive"]
    moves = [r for r in figures.reported if r["kind"] != "waive"]
    assert len(waives) == total["waive"] > 0 and len(moves) > 0, total
    assert total["waive_conflicts"] > 0, total  # waivers really raced the moves

    added = check_store(engine, since)
    assert added == {"events": len(figures.reported), "lessons": 0}
    with read_session(engine) as s:
        new = {
            e.seq: e
            for e in s.exec(select(m.HistoryEvent).where(col(m.HistoryEvent.seq) > last_seq))
        }
        waivers = s.exec(select(m.Waiver)).all()
        result = conformance.check(s)
    # Exactly the operations the processes were told succeeded, each once, no other.
    assert sorted((e.seq, e.kind, e.partnership) for e in new.values()) == sorted(
        (r["event"], r["kind"], r["id"]) for r in figures.reported
    )
    for r in waives:  # each waiver is recorded at the step it was decided on
        e = new[r["event"]]
        assert (e.from_state, e.to_state, json.loads(e.waived)) == (
            r["state"],
            r["state"],
            [r["criterion"]],
        ), (r, e)
    assert sorted((w.seq, w.step, w.criterion) for w in waivers) == sorted(
        (r["event"], r["state"], r["criterion"]) for r in waives
    )
    assert result.conforms, [d.line() for d in result.deviations]
    report(
        f"waive race [{backend.name}]: {PROCESSES} processes x {OPERATIONS} operations on "
        f"{len(slugs)} partnerships: {len(waives)} waivers and {len(moves)} moves recorded, "
        f"{total['waive_conflicts']} waivers and "
        f"{total['conflicts'] - total['waive_conflicts']} moves refused with exit 5; "
        f"conformance passes"
    )
