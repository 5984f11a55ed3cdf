"""``mspflow demo``: a small portfolio on a fresh embedded database, told as a story.

Partnerships modelled on cases in the guideline's boxes are created on a moved
clock, through the same facade every front door uses: one walks all 12 steps
to an outcome, one is onboarded mid-way and sent back to its foundations, one
is refused at a gate and waived through, one lives through a simulated year of
the scheduler. It ends with what an auditor would run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from mspflow.auth import Actor
from mspflow.cli.base import App, pass_app
from mspflow.cli.render import event_line, where
from mspflow.clock import ManualClock
from mspflow.errors import GateNotMet, InvalidInput
from mspflow.inputs import shown
from mspflow.walk import WALK, record_piece, record_step

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mspflow.services import Mspflow

__all__ = ["demo", "demo_path", "register", "run_demo"]

Say = Callable[[str], None]


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
    from mspflow.store import make_engine

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


def _story(say: Say, engine: Engine, path: Path, exports: Path) -> None:
    from mspflow.definition import find_workflow
    from mspflow.services import Mspflow
    from mspflow.services.users import add_first_user
    from mspflow.store import create_schema

    clock = ManualClock(datetime(2027, 1, 11, 8, 30, tzinfo=timezone.utc))
    create_schema(engine)
    add_first_user(engine, clock.now(), "amara", "amara@platform.example.org")
    app = Mspflow(engine=engine, clock=clock, actor=Actor("amara", "secretariat"))
    app.users.add(name="ivo", role="auditor", email="ivo@audit.example.org")
    ps = app.partnerships
    wf = find_workflow("msp-12-step")
    say(f"mspflow demo: a fresh database at {path}")
    say(
        f"workflow {wf.name} {wf.version}: {len(wf.modules)} modules, {len(wf.steps)} steps, "
        f"{len(wf.tasks)} tasks, {sum(len(s.gate) for s in wf.steps)} exit criteria\n"
    )

    def later(days: int) -> None:
        clock.advance(timedelta(days=days))

    # 1. Rural water (Cambodia): the full cycle.
    water = ps.create(
        name="Safe water for Kampong Chhnang", slug="water-kch", timezone="Asia/Phnom_Penh"
    ).id
    say(f"[{water}] created at step 1 by amara (secretariat)")
    record_step(app, water, 1, skip="case-for-partnering")
    try:
        ps.advance(partnership=water)
    except GateNotMet as refused:
        say(f"[{water}] advance refused (exit 3):")
        for line in refused.lines()[1:]:
            say(f"    {line.strip()}")
    record_piece(app, water, WALK[1]["case-for-partnering"])
    for step in range(1, 11):
        if step > 1:
            record_step(app, water, step)
        later(14)
        move = ps.advance(partnership=water, to="11" if step == 10 else None)
        say(f"[{water}] step {step} -> {wf.label(move.dest)}")
    ps.scale_up(
        partnership=water,
        dimensions=["physical", "political"],
        description="Replicate in a neighbouring province",
        replica="Safe water for Pursat",
        start_step="4",
    )
    pursat = "safe-water-for-pursat"
    record_piece(app, pursat, WALK[1]["challenge-framed"])
    record_piece(app, pursat, WALK[1]["partner-identified"])
    say(
        f"[{water}] scale-up decided (physical, political); replica '{pursat}' created at "
        "step 4 with the lessons learned, and its partners recorded"
    )
    later(30)
    ps.advance(partnership=water)
    move = ps.conclude(
        partnership=water,
        outcome="transfer-to-institution",
        note="A provincial water authority takes over; founders advise",
    )
    say(f"[{water}] concluded: {wf.label(move.dest)} (task 12.1)\n")

    # 2. Provincial capacity building (Papua New Guinea): onboarded mid-way.
    png = ps.create(
        name="Provincial capacity building",
        slug="png-capacity",
        at_step="7",
        timezone="Pacific/Port_Moresby",
    ).id
    debt = len(ps.gate_debt(partnership=png))
    say(f"[{png}] onboarded at step 7; {debt} criteria of steps 1-6 kept as gate debt")
    app.evidence.record(
        partnership=png,
        kind="profile",
        values={"challenge": "Provincial administrations lack planning and budgeting staff"},
    )
    app.evidence.record(
        partnership=png,
        kind="partner",
        values={"name": "Provincial Administration", "sector": "government",
                "contact": "Kila Moresi", "can_decide": True, "role": "accountable"},
    )  # fmt: skip
    later(7)
    ps.revisit(
        partnership=png, step="3", reason="A partner withdrew; the agreement must be renegotiated"
    )
    say(f"[{png}] revisited step 3: a partner withdrew\n")

    # 3. Banana trade knowledge network: waived through a gate.
    banana = ps.create(name="Banana trade knowledge network", slug="banana-network").id
    for criterion in (
        "challenge-framed",
        "challenge-linked-to-sdg",
        "lead-and-support",
        "partner-identified",
    ):
        record_piece(app, banana, WALK[1][criterion])
    ps.waive(
        partnership=banana,
        criterion="case-for-partnering",
        reason="The network's charter already makes the case",
    )
    move = ps.advance(partnership=banana)
    say(
        f"[{banana}] case-for-partnering (task 1.3) waived with a reason; advanced to "
        f"{wf.label(move.dest)}\n"
    )

    forum = _simulated_year(say, app, clock, engine)

    say("Portfolio:")
    for ref in (water, "safe-water-for-pursat", png, banana, forum):
        d = ps.get(partnership=ref)
        debt_note = f", {d.gate_debt_open} open gate debt" if d.gate_debt_open else ""
        say(f"  {d.id:<24} {where(d)}{debt_note}")
    say(f"\nHistory of {water}:")
    for event in ps.history(partnership=water).events:
        say("  " + event_line(event))
    say(f"\nLast moves of {forum}:")
    for event in ps.history(partnership=forum).events[-3:]:
        say("  " + event_line(event))
    say("")
    audit_epilogue(app.as_user(Actor("ivo", "auditor")), exports, say)
    say(f"\nInspect it: mspflow --db {path} --as amara partnership list")
    say(f"             mspflow --db {path} --as amara schedule status")


def audit_epilogue(app: Mspflow, out_dir: Path, say: Say) -> None:
    """What an auditor would run on the demo portfolio, with what it shows.

    Verifies the hash chain and prints the head as an anchor, writes the history
    as XES and OCEL 2.0 into ``out_dir``, and prints the conformance result.
    Nothing is written to the database.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    say("Audit (what 'mspflow audit ...' shows an auditor):")
    verified = app.audit.verify()
    say(f"  verify: the hash chain of {verified.events} events holds")
    say(f"  anchor: {verified.head}  (keep it; 'verify --anchor' then detects a rewrite)")
    for fmt, name in (("xes", "history.xes"), ("ocel", "history.ocel.json")):
        done = app.audit.export(format=fmt, path=out_dir / name)
        objects = sum(done.objects.values())
        extra = f", {objects} objects" if objects else ""
        say(f"  export {fmt}: {done.path} ({done.cases} partnerships, {done.events} events{extra})")
    report = app.audit.conformance()
    if report.conforms:
        say(
            f"  conformance: every move of {report.partnerships} partnerships "
            f"({report.events} events) is one the pinned definition allows"
        )
    else:
        say(f"  conformance: {len(report.deviations)} deviation(s)")
        for d in report.deviations:
            say(f"    {d.line()}")


def _simulated_year(say: Say, app: Mspflow, clock: ManualClock, engine: Engine) -> str:
    """A year of the scheduler on a moved clock: one sweep a day, as the daemon
    would make them; reminders, one missed meeting flagged overdue, quarterly
    reviews that start step 9 on their own."""
    from mspflow.scheduler.notify import TerminalChannel
    from mspflow.scheduler.times import local_date
    from mspflow.services.sweep import Sweeper

    tz = "Asia/Bangkok"
    forum = app.partnerships.create(
        name="Mekong water users forum", slug="mekong-forum", at_step="7", timezone=tz
    ).id
    record_piece(app, forum, WALK[1]["partner-identified"])
    record_piece(app, forum, WALK[9]["panel-complete"])  # task 9.1
    app.evidence.record(
        partnership=forum,
        kind="profile",
        values={"challenge": "Upstream and downstream users share no data on the river"},
    )
    record = app.evidence.record
    record(  # task 9.1: the indicator the reviews measure impact by
        partnership=forum,
        kind="indicator",
        values={"code": "6.5.1", "baseline": 40, "target": 70, "unit": "IWRM score",
                "baseline_on": "2026-12-31", "target_on": "2029-12-31"},
    )  # fmt: skip
    today = local_date(clock.now(), tz)
    record(  # task 8.1: a milestone, which the partners will miss
        partnership=forum,
        kind="milestone",
        values={"name": "Basin data-sharing agreement", "due": today + timedelta(days=100)},
    )
    first = today.replace(day=min(today.day, 20)) + timedelta(days=7)
    schedules = {
        "coordination-meeting": ("monthly", first),
        "monitoring": ("monthly", first + timedelta(days=14)),
        "review-panel": ("quarterly", first + timedelta(days=60)),
    }
    for kind, (cadence, start) in schedules.items():
        app.schedules.add(partnership=forum, kind=kind, cadence=cadence, start=start, at="09:00")
    say(
        f"[{forum}] onboarded at step 7 ({tz}); schedules agreed: monthly coordination "
        f"meetings from {first}, monthly monitoring, a quarterly review panel"
    )
    say(f"[{forum}] a simulated year, one sweep a day at 09:30 local time:")
    lines: list[str] = []
    sweeper = Sweeper(engine, clock, channels=[TerminalChannel(lines.append)], name="daemon")
    begin = clock.now()
    end = begin + timedelta(days=365)

    def dates(kind: str) -> list[date]:
        found = app.schedules.occurrences(partnership=forum, kind=kind, after=begin, until=end)
        return [local_date(o, tz) for o in found]

    meetings = dates("coordination-meeting")
    monitoring = dates("monitoring")
    missed = meetings[4]
    totals = {"reminders": 0, "overdue": 0, "reviews": 0, "late": 0}
    month = None
    passes = 0
    for day in range(366):
        on = today + timedelta(days=day)
        clock.set(datetime.combine(on, time(9, 30), tzinfo=ZoneInfo(tz)))
        if on in meetings and on != missed:
            record(partnership=forum, kind="meeting", values={"on": on, "minutes": "Held"})
            if meetings.index(on) % 3 == 0:  # a quarterly action plan (task 7.2)
                record(
                    partnership=forum,
                    kind="action-plan",
                    values={"period": "quarterly", "on": on, "summary": "Next quarter's work"},
                )
        if on in monitoring:
            record(
                partnership=forum,
                kind="monitoring",
                values={"kind": "progress", "on": on, "summary": "On plan"},
            )
        if day == 130:  # reached a month late, with the reason
            app.evidence.update_milestone(
                partnership=forum,
                milestone="Basin data-sharing agreement",
                values={"done": on, "delay": "One ministry's legal review took a month longer"},
            )
            say(f"    {on}: the data-sharing agreement is signed, a month late; the flag closes")
        lines.clear()
        report = sweeper.sweep()
        totals["reminders"] += report.fired.get("reminder notified", 0)
        totals["overdue"] += report.fired.get("overdue notified", 0)
        totals["late"] += report.fired.get("milestone-overdue notified", 0)
        flagged = report.fired.get("overdue notified") or report.fired.get(
            "milestone-overdue notified"
        )
        if on.strftime("%Y-%m") != month and lines:
            month = on.strftime("%Y-%m")
            if day < 45 or flagged:
                for line in lines:
                    say("    " + line.strip())
        elif flagged:
            for line in lines:
                say("    " + line.strip())
        if report.moved:
            totals["reviews"] += 1
            passes += 1
            jump = app.partnerships.history(partnership=forum).events[-1]
            owed = ", ".join(jump.data.get("gate_debt", [])) or "none"
            say(
                f"    {on}: the quarterly review fell due; the scheduler moved {forum} to step 9, "
                f"keeping what this pass left unmet as gate debt: {owed}"
            )
            _review_cycle(app, forum, on, passes, say)
    say(
        f"[{forum}] the year in numbers: {totals['reminders']} reminders sent, "
        f"{totals['overdue']} overdue flag (the meeting of {missed} has no minutes), "
        f"{totals['late']} late milestone, {totals['reviews']} reviews started by the scheduler"
    )
    shown_detail = app.partnerships.show(partnership=forum)
    for i in shown_detail.indicators:
        say(
            f"[{forum}] SDG indicator {i.code}: baseline {i.baseline:g}, target {i.target:g}, "
            f"{i.values} values measured, the latest {i.latest:g} on {i.measured_on} "
            f"({i.progress:.0%} of the way)\n"
        )
    return forum


def _review_cycle(app: Mspflow, ref: str, on: date, n: int, say: Say) -> None:
    """What the secretariat records once a review starts (tasks 9.1-10.2): each pass
    round the loop needs its own reviews, indicator value, revision and lesson."""
    record = app.evidence.record
    ps = app.partnerships
    if n == 2:  # the first pass's reviews do not count for the second
        try:
            ps.advance(partnership=ref)
        except GateNotMet as refused:
            say(f"    {on}: advance refused, the records of the last pass are stale:")
            for line in refused.lines()[1:]:
                say(f"        {line.strip()}")
    record(partnership=ref, kind="indicator-value",
           values={"indicator": "6.5.1", "value": 40 + 4 * n, "on": on})  # fmt: skip
    on_track = n % 2 == 1
    for kind, findings in (("progress", "Milestones met" if on_track else "Behind on data"),
                           ("process", "Partners engaged")):  # fmt: skip
        values = {"kind": kind, "on": on, "findings": findings}
        if kind == "progress":
            values["on_track"] = on_track
        record(partnership=ref, kind="review", values=values)
    if on_track:
        ps.advance(partnership=ref, to="7")
        say(f"    {on}: the panel finds {ref} on track; back to step 7 for the next pass")
        return
    ps.advance(partnership=ref)
    record(partnership=ref, kind="revision", values={"description": f"Work plan adjusted on {on}"})
    record(partnership=ref, kind="lesson", values={"text": f"Lesson of the review of {on}"})
    ps.advance(partnership=ref, to="7")
    say(f"    {on}: the panel finds {ref} behind; revised in step 10, back to step 7")


@click.command()
@click.option(
    "--db",
    "demo_db",
    type=click.Path(dir_okay=False),
    help="Keep the demo database in this new file (default: a temporary one); "
    "the global --db works too.",
)
@click.option("--force", is_flag=True, help="Replace the file at --db if there is one.")
@pass_app
def demo(app: App, demo_db: str | None, force: bool) -> None:
    """Run the demonstration story on a fresh embedded database.

    An existing file is never replaced unless --force says so; the audit
    exports go to a new temporary folder, named in the output.
    """
    from mspflow.errors import UsageError

    if demo_db and app.db and demo_db != app.db:
        raise UsageError(
            f"two databases for the demo: --db {app.db} and demo --db {demo_db}",
            hint="give one of them",
        )
    path = demo_path(demo_db or app.db, force=force)
    if path is not None:
        app.opened = f"sqlite:///{path}"
    run_demo(click.echo, path, force=force)


def register(main: click.Group) -> None:
    main.add_command(demo)
