"""The story behind ``mspflow demo``: a small portfolio on a fresh embedded database.

Three partnerships modelled on cases in the guideline's boxes are created on a
moved clock; one walks all 12 steps to an outcome, one is onboarded mid-way and
sent back to its foundations, one is refused at a gate and waived through.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mspflow.auth import Actor
from mspflow.clock import ManualClock
from mspflow.definition import Workflow, find_workflow
from mspflow.engine import PartnershipService, definition_for
from mspflow.errors import GateNotMet, InvalidInput
from mspflow.evidence import record, update_partner
from mspflow.inputs import shown
from mspflow.store import create_schema, make_engine, read_session
from mspflow.users import add_user
from mspflow.views import event_line, partnership_dict
from mspflow.walk import WALK

__all__ = ["demo_path", "record_piece", "run_demo"]

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


def demo_path(db: str | None, *, force: bool = False) -> Path | None:
    """Where the demo keeps its database (None: a temporary file), checked before any write.

    ``db`` is a path or a ``sqlite:///`` URL. Something already there (a file,
    a link, a device, a leftover ``-wal`` file) is refused with exit 7 unless
    ``force`` is given, and even then only a regular file is replaced.
    """
    from mspflow.store.db import is_in_memory, sqlite_path

    if db is None:
        return None
    file = sqlite_path(db) if "://" in db else db
    if not file or is_in_memory(db) or file.startswith("file:"):
        raise InvalidInput(
            f"the demo builds a new SQLite file, and {shown(db)} is not a file path",
            hint="name a new file, e.g. --db demo.db",
            field="db",
        )
    path = Path(os.path.abspath(Path(file).expanduser()))  # as named: a link is not resolved
    there = [p for p in (path, Path(f"{path}-wal")) if os.path.lexists(p)]
    if there and not force:
        raise InvalidInput(
            f"{there[0]} already exists; the demo builds a new database and replaces nothing",
            hint="name a new file, or add --force to replace it",
            field="db",
        )
    real = Path(os.path.realpath(path))
    if real.exists() and not real.is_file():
        raise InvalidInput(
            f"{path} is not a regular file; the demo replaces only a database file",
            hint="name a new file",
            field="db",
        )
    return real


def run_demo(say: Say, db: Path | None = None, *, force: bool = False) -> None:
    """Tell the story on a new database at ``db`` (see :func:`demo_path`), or a temporary one.

    The audit exports go to a new temporary folder, which the story names. A
    file replaced with ``force`` is replaced only once the new database is whole.
    """
    if db is None:
        folder = Path(tempfile.mkdtemp(prefix="mspflow-demo-"))
        path = build = folder / "demo.db"
        exports = folder / "audit"
    else:
        path = Path(db)
        build = path
        if force and os.path.lexists(path):
            build = path.with_name(f".{path.name}.{os.getpid()}.demo")
        elif force:
            _remove_database(path)  # a -wal/-shm left by a removed database
        exports = Path(tempfile.mkdtemp(prefix="mspflow-demo-audit-"))
    engine = make_engine(f"sqlite:///{build}", create_dirs=True)
    try:
        _story(say, engine, path, exports)
    except BaseException:
        engine.dispose()
        if build != path:
            _remove_database(build)
        raise
    engine.dispose()  # the last connection folds the -wal file into the database
    if build != path:
        _remove_database(path)  # with its -wal/-shm, which would not fit the new file
        os.replace(build, path)


def _remove_database(path: Path) -> None:
    for suffix in ("-wal", "-shm", ""):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _story(say: Say, engine: Any, path: Path, exports: Path) -> None:
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

    forum = _simulated_year(say, engine, clock, service, amara, wf, text)

    with read_session(engine) as s:
        say("Portfolio:")
        for ref in (water, "safe-water-for-pursat", png, banana, forum):
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
        p = service.get(s, forum)
        say(f"\nLast moves of {forum}:")
        for event in service.history(s, p)[-3:]:
            say("  " + event_line(event, wf_pinned))
    say("")
    from mspflow.audit.story import audit_epilogue

    audit_epilogue(engine, exports, say)
    say(f"\nInspect it: mspflow --db {path} --as amara partnership list")
    say(f"             mspflow --db {path} --as amara schedule status")


def _simulated_year(
    say: Say,
    engine: Any,
    clock: ManualClock,
    service: PartnershipService,
    amara: Actor,
    wf: Workflow,
    text: str,
) -> str:
    """A year of the scheduler on a moved clock: one sweep a day, as the daemon
    would make them; reminders, one missed meeting flagged overdue, quarterly
    reviews that start step 9 on their own."""
    from mspflow.scheduler.notify import TerminalChannel
    from mspflow.scheduler.sweep import Sweeper
    from mspflow.scheduler.times import local_date

    tz = "Asia/Bangkok"
    forum = service.create(
        amara,
        name="Mekong water users forum",
        wf=wf,
        definition_text=text,
        slug="mekong-forum",
        at_step="7",
        timezone=tz,
    ).slug
    record_piece(service, amara, forum, WALK[1]["partner-identified"])
    record_piece(service, amara, forum, WALK[9]["panel-complete"])  # task 9.1
    today = local_date(clock.now(), tz)
    first = today.replace(day=min(today.day, 20)) + timedelta(days=7)
    schedules = {
        "coordination-meeting": ("monthly", first),
        "monitoring": ("monthly", first + timedelta(days=14)),
        "review-panel": ("quarterly", first + timedelta(days=60)),
    }
    for kind, (cadence, start) in schedules.items():
        record(
            service,
            amara,
            forum,
            "schedule",
            {"kind": kind, "cadence": cadence, "start": start.isoformat(), "at": "09:00"},
        )
    say(
        f"[{forum}] onboarded at step 7 ({tz}); schedules agreed: monthly coordination "
        f"meetings from {first}, monthly monitoring, a quarterly review panel"
    )
    say(f"[{forum}] a simulated year, one sweep a day at 09:30 local time:")
    lines: list[str] = []
    sweeper = Sweeper(engine, clock, channels=[TerminalChannel(lines.append)], name="daemon")
    begin = clock.now()
    end = begin + timedelta(days=365)
    meetings = [local_date(o, tz) for o in _occ(engine, forum, "coordination-meeting", begin, end)]
    monitoring = [local_date(o, tz) for o in _occ(engine, forum, "monitoring", begin, end)]
    missed = meetings[4]
    totals = {"reminders": 0, "overdue": 0, "reviews": 0}
    month = None
    for day in range(366):
        on = today + timedelta(days=day)
        clock.set(datetime.combine(on, time(9, 30), tzinfo=ZoneInfo(tz)))
        if on in meetings and on != missed:
            record(service, amara, forum, "meeting", {"on": on.isoformat(), "minutes": "Held"})
        if on in monitoring:
            record(
                service,
                amara,
                forum,
                "monitoring",
                {"kind": "progress", "on": on.isoformat(), "summary": "On plan"},
            )
        lines.clear()
        report = sweeper.sweep()
        totals["reminders"] += report.fired.get("reminder notified", 0)
        totals["overdue"] += report.fired.get("overdue notified", 0)
        if on.strftime("%Y-%m") != month and lines:
            month = on.strftime("%Y-%m")
            if day < 45 or report.fired.get("overdue notified"):
                for line in lines:
                    say("    " + line.strip())
        elif report.fired.get("overdue notified"):
            for line in lines:
                say("    " + line.strip())
        if report.moved:
            totals["reviews"] += 1
            say(f"    {on}: the quarterly review fell due; the scheduler moved {forum} to step 9")
            _review_cycle(service, amara, forum, on)
            say(f"    {on}: review panel met; revisions recorded; back to step 7 (the loop)")
    say(
        f"[{forum}] the year in numbers: {totals['reminders']} reminders sent, "
        f"{totals['overdue']} overdue flag (the meeting of {missed} has no minutes), "
        f"{totals['reviews']} reviews started by the scheduler\n"
    )
    return forum


def _occ(engine: Any, ref: str, kind: str, begin: datetime, end: datetime) -> list[datetime]:
    from sqlmodel import col, select

    from mspflow.scheduler.times import occurrences
    from mspflow.store import models as m

    with read_session(engine) as s:
        row = s.exec(
            select(m.Schedule)
            .join(m.Partnership, col(m.Partnership.id) == m.Schedule.partnership_id)
            .where(m.Partnership.slug == ref, m.Schedule.kind == kind)
        ).one()
    return list(occurrences(row, after=begin, until=end))


def _review_cycle(service: PartnershipService, actor: Actor, ref: str, on: date) -> None:
    """What the secretariat records once a review starts (tasks 9.1-10.2)."""
    day = on.isoformat()
    for kind, findings in (("progress", "Milestones met"), ("process", "Partners engaged")):
        record(service, actor, ref, "review", {"kind": kind, "on": day, "findings": findings})
    service.move(actor, ref, kind="advance")
    record(service, actor, ref, "revision", {"description": f"Work plan adjusted on {day}"})
    record(service, actor, ref, "lesson", {"text": f"Lesson of the review of {day}"})
    service.move(actor, ref, kind="advance", dest="7")
