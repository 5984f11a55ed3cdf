"""The story behind ``mspflow demo``: a small portfolio on a fresh embedded database.

Three partnerships modelled on cases in the guideline's boxes are created on a
moved clock; one walks all 12 steps to an outcome, one is onboarded mid-way and
sent back to its foundations, one is refused at a gate and waived through.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mspflow.auth import Actor
from mspflow.clock import ManualClock
from mspflow.definition import find_workflow
from mspflow.engine import PartnershipService, definition_for
from mspflow.errors import GateNotMet
from mspflow.evidence import record, update_partner
from mspflow.store import create_schema, make_engine, read_session
from mspflow.users import add_user
from mspflow.views import event_line, partnership_dict
from mspflow.walk import WALK

__all__ = ["record_piece", "run_demo"]

Say = Callable[[str], None]


def record_piece(service: PartnershipService, actor: Actor, ref: str, records: Any) -> None:
    for kind, values in records:
        if kind == "partner-update":
            values = dict(values)
            update_partner(service, actor, ref, values.pop("name"), values)
        else:
            record(service, actor, ref, kind, values)


def _record_step(
    service: PartnershipService, actor: Actor, ref: str, step: int, skip: str | None = None
) -> None:
    pieces: Mapping[str, Any] = WALK[step]
    for criterion, records in pieces.items():
        if criterion != skip:
            record_piece(service, actor, ref, records)


def run_demo(say: Say, db: str | None = None) -> None:
    if db is None:
        folder = tempfile.mkdtemp(prefix="mspflow-demo-")
        path = Path(folder) / "demo.db"
    else:
        path = Path(db)
        if path.exists():
            path.unlink()  # the demo always starts from an empty database
    engine = make_engine(f"sqlite:///{path.resolve()}", create_dirs=True)
    try:
        _story(say, engine, path)
    finally:
        engine.dispose()


def _story(say: Say, engine: Any, path: Path) -> None:
    clock = ManualClock(datetime(2027, 1, 11, 8, 30, tzinfo=timezone.utc))
    create_schema(engine)
    add_user(engine, clock, None, "amara", "secretariat", "amara@platform.example.org", first=True)
    amara = Actor("amara", "secretariat")
    add_user(engine, clock, amara, "ivo", "auditor", "ivo@audit.example.org")
    service = PartnershipService(engine, clock)
    wf = find_workflow("msp-12-step")
    text = Path(wf.source).read_text(encoding="utf-8")
    say(f"mspflow demo: a fresh database at {path}")
    say(
        f"workflow {wf.name} {wf.version}: {len(wf.modules)} modules, {len(wf.steps)} steps, "
        f"{len(wf.tasks)} tasks, {sum(len(s.gate) for s in wf.steps)} exit criteria\n"
    )

    def later(days: int) -> None:
        clock.advance(timedelta(days=days))

    # 1. Rural water (Cambodia): the full cycle.
    water = service.create(
        amara,
        name="Safe water for Kampong Chhnang",
        wf=wf,
        definition_text=text,
        slug="water-kch",
        timezone="Asia/Phnom_Penh",
    ).slug
    say(f"[{water}] created at step 1 by amara (secretariat)")
    _record_step(service, amara, water, 1, skip="case-for-partnering")
    try:
        service.move(amara, water, kind="advance")
    except GateNotMet as refused:
        say(f"[{water}] advance refused (exit 3):")
        for line in refused.lines()[1:]:
            say(f"    {line.strip()}")
    record_piece(service, amara, water, WALK[1]["case-for-partnering"])
    for step in range(1, 11):
        if step > 1:
            _record_step(service, amara, water, step)
        later(14)
        dest = "11" if step == 10 else None
        move = service.move(amara, water, kind="advance", dest=dest)
        say(f"[{water}] step {step} -> {wf.label(move.dest)}")
    service.scale_up(
        amara,
        water,
        dimensions=["physical", "political"],
        description="Replicate in a neighbouring province",
        replica_name="Safe water for Pursat",
        replica_step="4",
    )
    say(
        f"[{water}] scale-up decided (physical, political); replica 'safe-water-for-pursat' "
        "created at step 4 with the lessons learned"
    )
    later(30)
    service.move(amara, water, kind="advance")
    move = service.move(
        amara,
        water,
        kind="conclude",
        outcome="transfer-to-institution",
        note="A provincial water authority takes over; founders advise",
    )
    say(f"[{water}] concluded: {wf.label(move.dest)} (task 12.1)\n")

    # 2. Provincial capacity building (Papua New Guinea): onboarded mid-way.
    png = service.create(
        amara,
        name="Provincial capacity building",
        wf=wf,
        definition_text=text,
        slug="png-capacity",
        at_step="7",
        timezone="Pacific/Port_Moresby",
    ).slug
    with read_session(engine) as s:
        debt = len(service.gate_debt(s, service.get(s, png)))
    say(f"[{png}] onboarded at step 7; {debt} criteria of steps 1-6 kept as gate debt")
    later(7)
    service.move(
        amara,
        png,
        kind="revisit",
        dest="3",
        reason="A partner withdrew; the agreement must be renegotiated",
    )
    say(f"[{png}] revisited step 3: a partner withdrew\n")

    # 3. Banana trade knowledge network: waived through a gate.
    banana = service.create(
        amara,
        name="Banana trade knowledge network",
        wf=wf,
        definition_text=text,
        slug="banana-network",
    ).slug
    for criterion in (
        "challenge-framed",
        "challenge-linked-to-sdg",
        "lead-and-support",
        "partner-identified",
    ):
        record_piece(service, amara, banana, WALK[1][criterion])
    service.waive(
        amara, banana, "case-for-partnering", reason="The network's charter already makes the case"
    )
    move = service.move(amara, banana, kind="advance")
    say(
        f"[{banana}] case-for-partnering (task 1.3) waived with a reason; advanced to "
        f"{wf.label(move.dest)}\n"
    )

    with read_session(engine) as s:
        say("Portfolio:")
        for ref in (water, "safe-water-for-pursat", png, banana):
            d = partnership_dict(service, s, service.get(s, ref), detail=False)
            where = (
                f"step {d['step']['number']} {d['step']['name']}"
                if d["step"]
                else f"closed: {d['final_state']}"
            )
            debt_note = f", {d['gate_debt_open']} open gate debt" if d["gate_debt_open"] else ""
            say(f"  {d['id']:<24} {where}{debt_note}")
        p = service.get(s, water)
        say(f"\nHistory of {water}:")
        wf_pinned = definition_for(s, p)
        for event in service.history(s, p):
            say("  " + event_line(event, wf_pinned))
    say(f"\nInspect it: mspflow --db {path} partnership list")
