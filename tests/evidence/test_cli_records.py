"""Recording from the command line: duplicates, derived schedules, the sample evidence."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import col, select

from mspflow.store import models as m
from mspflow.store import read_session
from tests.conftest import REPO
from tests.evidence.conftest import Run, counts, one_line

EXAMPLES = REPO / "examples"


def test_a_duplicate_is_exit_7_from_the_cli_as_from_a_file(
    run: Run, engine: Engine, tmp_path: Path
) -> None:
    run("record", "sdg", "water", "6.1")
    run("partner", "add", "water", "Village Water Network", "--sector", "civil-society")
    run("record", "component", "water", "Water points")
    before = counts(engine)
    line = one_line(run("record", "sdg", "water", "6.1", code=7))
    assert line == "mspflow: sdg: SDG target 6.1 is already linked to water", line
    line = one_line(
        run("partner", "add", "water", "Village Water Network", "--sector", "ngo", code=7)
    )
    assert "water already has a partner 'Village Water Network'" in line, line
    one_line(run("record", "component", "water", "Water points", code=7))
    rows = tmp_path / "again.csv"
    rows.write_text("record,code\nsdg,6.1\n")
    line = one_line(run("import", "water", rows, code=7))
    assert line.endswith(":2: sdg: SDG target 6.1 is already linked to water"), line
    assert counts(engine) == before


def test_a_midterm_review_is_derived_from_the_time_frame(run: Run, engine: Engine) -> None:
    before = counts(engine)
    line = one_line(run("schedule", "add", "water", "midterm-review", code=7))
    assert "derived from the time frame, which is not recorded" in line, line
    assert line.endswith("(record the scope's start and end first)"), line
    assert counts(engine) == before
    run("record", "scope", "water", "--outputs", "60 water points")  # no time frame yet
    one_line(run("schedule", "add", "water", "midterm-review", code=7))
    run("record", "scope", "water", "--start", "2027-03-01", "--end", "2029-03-01")
    out = json.loads(run("schedule", "add", "water", "midterm-review", "--json").output)
    assert set(out) == {"id", "kind", "record", "notes"} and out["kind"] == "schedule"
    assert out["notes"] == []  # once, as the midterm review offers
    with read_session(engine) as s:
        active = s.exec(select(m.Schedule).where(col(m.Schedule.active).is_(True))).all()
    assert [(x.kind, x.cadence, x.starts_on) for x in active] == [
        ("midterm-review", "once", date(2028, 2, 29))  # 365 of 731 days
    ]


def test_schedule_add_without_start_says_so(run: Run) -> None:
    line = one_line(run("schedule", "add", "water", "monitoring", code=7))
    assert line == (
        "mspflow: schedule: start is required for monitoring "
        "(give the date of the first occurrence, YYYY-MM-DD) [--start]"
    ), line


def test_the_sample_evidence_imports(run: Run, engine: Engine) -> None:
    """The README's block: what it records by hand, then the two sample files."""
    run("record", "sdg", "water", "6.1")
    run("partner", "add", "water", "Village Water Network", "--sector", "civil-society",
        "--contact", "Sok Lina", "--can-decide")  # fmt: skip
    out = json.loads(run("import", "water", EXAMPLES / "evidence.yaml", "--json").output)
    assert out == {
        "profile": 1,
        "sdg": 1,
        "partner": 2,
        "objective": 2,
        "scope": 1,
        "risk": 1,
        "resource": 2,
        "component": 2,
        "activity": 2,
        "component-lead": 1,
        "leadership": 1,
        "leadership-agreement": 2,
        "schedule": 1,
    }
    out = json.loads(run("import", "water", EXAMPLES / "evidence.csv", "--json").output)
    assert out == {
        "schedule": 2,
        "meeting": 1,
        "monitoring": 1,
        "report": 1,
        "risk": 1,
        "lesson": 1,
    }
    with read_session(engine) as s:
        present = s.exec(select(m.MeetingAttendance)).all()
        assert len(present) == 3
        schedules = s.exec(select(m.Schedule).where(col(m.Schedule.active).is_(True))).all()
        assert sorted(x.kind for x in schedules) == [  # a scope makes no midterm review (1197)
            "coordination-meeting",
            "monitoring",
            "reporting",
        ]
        assert {x.local_time for x in schedules if x.kind == "monitoring"} == {"10:00"}
    shown = run("partnership", "show", "water", "--json").output
    assert "Mekong Pumps Ltd" in shown


def test_a_cadence_the_workflow_does_not_suggest_is_kept_with_a_note(run: Run) -> None:
    done = run("schedule", "add", "water", "monitoring", "--cadence", "weekly", "--start",
               "2027-03-04")  # fmt: skip
    assert "mspflow: note: the workflow suggests a monitoring cycle" in done.stderr
    assert "weekly is kept as agreed" in done.stderr
    quiet = run("schedule", "add", "water", "monitoring", "--cadence", "monthly", "--start",
                "2027-03-04")  # fmt: skip
    assert "note:" not in quiet.stderr
