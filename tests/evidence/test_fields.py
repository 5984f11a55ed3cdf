"""Every field of every kind of record passes its rule in mspflow.inputs, once.

A value that breaks a rule is refused with InvalidInput (exit 7) naming the
field, in one line, and nothing is written; on both backends.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from mspflow.errors import InvalidInput, NotFound
from mspflow.services import Mspflow
from mspflow.services.evidence import RECORD_KEY, RECORDS
from mspflow.store import models as m
from mspflow.store import read_session
from tests.evidence.conftest import Run, counts, one_line

NGO = "Village Water Network"
MEETING = {"kind": "coordination-meeting", "cadence": "monthly", "start": "2027-02-01"}

BAD: list[tuple[str, dict[str, Any], str]] = [
    # one-line names: anything that can reach a mail header, a subject or a log line
    ("partner", {"name": "Evil\nName", "sector": "ngo"}, "name"),
    ("partner", {"name": "Evil\u2028Name", "sector": "ngo"}, "name"),
    ("partner", {"name": "x" * 201, "sector": "ngo"}, "name"),
    ("partner", {"name": "\t=1+1", "sector": "ngo"}, "name"),
    ("partner", {"name": "A", "sector": "ngo\r"}, "sector"),
    ("partner", {"name": "A", "sector": "ngo", "contact": "Sok\r\nBcc: x@y.org"}, "contact"),
    ("partner", {"name": "A", "sector": "ngo", "email": "a@b.org\r\nBcc: x@y.org"}, "email"),
    ("partner", {"name": "A", "sector": "ngo", "email": "not an address"}, "email"),
    ("partner", {"name": "A", "sector": "ngo", "email": "a@localhost"}, "email"),
    ("partner", {"name": "A", "sector": "ngo", "can_decide": "maybe"}, "can_decide"),
    ("component", {"name": "Water\npoints"}, "name"),
    ("activity", {"component": "#1", "name": "Dig\rwells", "responsible": NGO}, "name"),
    ("panel-member", {"partner": NGO, "name": "Sok\nLina"}, "name"),
    ("report", {"period": "Q1\n2027"}, "period"),
    ("report", {"period": "Q1", "link": "https://x.org/\n"}, "link"),
    ("signature", {"partner": NGO, "document": "charter\x00.pdf"}, "document"),
    ("attestation", {"task": "1.1\n", "note": "done"}, "task"),
    ("profile", {"lead_organization": "Ministry\nof Water"}, "lead_organization"),
    # free text: no NUL, bounded
    ("lesson", {"text": "a\x00b"}, "text"),
    ("lesson", {"text": "x" * 20_001}, "text"),
    ("profile", {"challenge": "\x00"}, "challenge"),
    ("lesson", {"text": ["a", "b"]}, "text"),
    ("lesson", {"text": {"a": "b"}}, "text"),
    # dates within inputs.FIRST_DATE .. LAST_DATE, written YYYY-MM-DD
    ("meeting", {"on": "0001-01-01"}, "on"),
    ("meeting", {"on": "2200-01-01"}, "on"),
    ("meeting", {"on": "31/02/2027"}, "on"),
    ("meeting", {"on": "2027-02-30"}, "on"),
    ("scope", {"start": "1899-12-31"}, "start"),
    ("scope", {"start": "2027-01-01", "end": "2026-12-31"}, "end"),
    ("activity", {"component": "#1", "name": "A", "responsible": NGO, "end": "9999-01-01"}, "end"),
    ("profile", {"implementation_start": "20270101"}, "implementation_start"),
    # numbers finite and bounded
    (
        "resource",
        {"partner": NGO, "kind": "financial", "description": "d", "amount": "1e400"},
        "amount",
    ),
    (
        "resource",
        {"partner": NGO, "kind": "financial", "description": "d", "amount": "nan"},
        "amount",
    ),
    (
        "resource",
        {"partner": NGO, "kind": "financial", "description": "d", "amount": "1e16"},
        "amount",
    ),
    (
        "resource",
        {"partner": NGO, "kind": "financial", "description": "d", "amount": "999999999999"},
        "amount",
    ),
    (
        "resource",
        {"partner": NGO, "kind": "financial", "description": "d", "amount": "ten"},
        "amount",
    ),
    ("resource", {"partner": NGO, "kind": "cash", "description": "d"}, "kind"),
    ("risk", {"area": "weather", "description": "floods"}, "area"),
    ("review", {"kind": "progress", "findings": "f", "on_track": "maybe"}, "on_track"),
    # schedules: day counts, zones, times, dates a sweep can compute with
    ("schedule", {**MEETING, "grace_days": "999999999999"}, "grace_days"),
    ("schedule", {**MEETING, "grace_days": "-1"}, "grace_days"),
    ("schedule", {**MEETING, "grace_days": "1.5"}, "grace_days"),
    ("schedule", {**MEETING, "lead_days": "3650000"}, "lead_days"),
    ("schedule", {**MEETING, "lead_days": "7,x"}, "lead_days"),
    ("schedule", {**MEETING, "lead_days": "-7"}, "lead_days"),
    ("schedule", {**MEETING, "lead_days": "7,,1"}, "lead_days"),
    ("schedule", {**MEETING, "timezone": "Europe/Berlin\n"}, "timezone"),
    ("schedule", {**MEETING, "lead_days": ",".join(str(d) for d in range(11))}, "lead_days"),
    ("schedule", {**MEETING, "timezone": "Europe"}, "timezone"),
    ("schedule", {**MEETING, "timezone": "../../etc/passwd"}, "timezone"),
    ("schedule", {**MEETING, "timezone": "Mars/Olympus"}, "timezone"),
    ("schedule", {**MEETING, "start": "0001-01-01", "timezone": "Asia/Tokyo"}, "start"),
    ("schedule", {**MEETING, "start": "2027-01-31"}, "start"),
    ("schedule", {**MEETING, "at": "25:00"}, "at"),
    ("schedule", {**MEETING, "at": "9h"}, "at"),
    ("schedule", {**MEETING, "kind": "coffee-break"}, "kind"),
    ("schedule", {**MEETING, "cadence": "yearly"}, "cadence"),
    ("schedule", {**MEETING, "kind": "coordination\nmeeting"}, "kind"),
    ("schedule", {"kind": "monitoring", "cadence": "monthly"}, "start"),
    ("schedule", {"kind": "midterm-review"}, "kind"),  # it cannot be agreed yet
    ("sdg", {"code": "6.99"}, "code"),
    ("sdg", {"code": "6.1\n"}, "code"),
    ("indicator", {"code": "6.1", "baseline": 1, "target": 2}, "code"),  # a target, not one
    ("indicator", {"code": "6.1.9", "baseline": 1, "target": 2}, "code"),
    ("indicator", {"code": "6.1.1", "baseline": 5, "target": 5}, "target"),
    ("indicator", {"code": "6.1.1", "baseline": "n/a", "target": 5}, "baseline"),
    ("milestone", {"name": "Wells", "due": "next spring"}, "due"),
    ("meeting", {"on": "2027-01-04", "present": [NGO, ""]}, "present"),
]


@pytest.fixture
def ngo(service: Mspflow, water: str) -> str:
    """``water`` with one partner and one component (#1), so references resolve."""
    service.evidence.record(
        partnership=water, kind="partner", values={"name": NGO, "sector": "civil-society"}
    )
    service.evidence.record(partnership=water, kind="component", values={"name": "Water points"})
    return water


@pytest.mark.parametrize(
    ("kind", "values", "field"), BAD, ids=[f"{k}-{f}-{i}" for i, (k, _, f) in enumerate(BAD)]
)
def test_a_bad_value_is_refused_naming_its_field(
    service: Mspflow,
    engine: Engine,
    ngo: str,
    kind: str,
    values: dict[str, Any],
    field: str,
) -> None:
    before = counts(engine)
    with pytest.raises(InvalidInput) as info:
        service.evidence.record(partnership=ngo, kind=kind, values=values)
    error = info.value
    assert error.code == "invalid"
    assert error.field == field, str(error)
    assert "\n" not in str(error) and "\r" not in str(error)
    assert str(error).startswith(f"{kind}: ")
    assert counts(engine) == before


def test_every_rule_is_tried() -> None:
    """The table above tries each type of field at least once (references: below)."""
    by_name = {(spec.kind, f.name): f for spec in RECORDS.values() for f in spec.fields}
    tried = {by_name[kind, field].type for kind, _, field in BAD}
    used = {f.type for f in by_name.values()} - {"partner", "component", "objective", "indicator"}
    assert used <= tried, used - tried


def test_no_field_is_named_like_the_record_key() -> None:
    """``record:`` names a bulk row's kind; a field of that name would collide with it."""
    assert all(f.name != RECORD_KEY for spec in RECORDS.values() for f in spec.fields)


def test_an_unknown_reference_is_not_found(service: Mspflow, engine: Engine, ngo: str) -> None:
    before = counts(engine)
    with pytest.raises(NotFound, match="has no partner 'Nobody'") as info:
        service.evidence.record(partnership=ngo, kind="leadership", values={"partner": "Nobody"})
    assert info.value.field == "partner"
    with pytest.raises(NotFound, match="has no partner '#99999999999999999999'"):
        service.evidence.record(
            partnership=ngo, kind="leadership", values={"partner": "#99999999999999999999"}
        )
    assert counts(engine) == before


def test_an_indicator_is_named_by_its_code_as_written(service: Mspflow, ngo: str) -> None:
    record = service.evidence.record
    with pytest.raises(NotFound, match=r"has no indicator '6\.1\.1'"):  # not tracked yet
        record(
            partnership=ngo,
            kind="indicator-value",
            values={"indicator": "6.1.1", "value": 3, "on": "2027-01-04"},
        )
    record(
        partnership=ngo,
        kind="indicator",
        values={"code": "SDG 6-1-1", "baseline": 31, "target": 80},
    )
    with pytest.raises(InvalidInput, match=r"already tracks SDG indicator 6\.1\.1"):
        record(
            partnership=ngo, kind="indicator", values={"code": "6.1.1", "baseline": 1, "target": 2}
        )
    record(
        partnership=ngo,
        kind="indicator-value",
        values={"indicator": "6-1-1", "value": 38, "on": "2027-01-04"},
    )
    [progress] = service.partnerships.show(partnership=ngo).indicators
    assert (progress.code, progress.latest, progress.values) == ("6.1.1", 38, 1)
    assert progress.progress == round(7 / 49, 4)
    assert progress.title.startswith("Proportion of population using safely managed drinking")


def test_valid_values_are_stored_as_given_or_normalised(
    service: Mspflow, engine: Engine, ngo: str
) -> None:
    service.evidence.record(
        partnership=ngo,
        kind="partner",
        values={
            "name": "  Mekong Pumps  ",
            "sector": "private",
            "email": "Sophea@Pumps.example.com",
        },
    )
    service.evidence.record(
        partnership=ngo,
        kind="resource",
        values={
            "partner": "Mekong Pumps",
            "kind": "financial",
            "description": "d",
            "amount": "1250.50",
        },
    )
    service.evidence.record(
        partnership=ngo,
        kind="schedule",
        values={**MEETING, "at": "9:05", "lead_days": " 30, 7 ,7", "grace_days": "3660"},
    )
    service.evidence.record(
        partnership=ngo, kind="meeting", values={"on": "2199-12-31", "present": [NGO, NGO]}
    )
    with read_session(engine) as s:
        pumps = s.exec(select(m.Partner).where(m.Partner.name == "Mekong Pumps")).one()
        assert pumps.contact_email == "Sophea@Pumps.example.com"
        assert s.exec(select(m.Resource)).one().amount == 1250.5
        schedule = s.exec(select(m.Schedule)).one()
        assert (schedule.local_time, schedule.lead_days, schedule.grace_days) == (
            "09:05",
            "30,7",
            3660,
        )
        assert schedule.timezone == "Asia/Phnom_Penh"  # the partnership's, when none is given
        assert s.exec(select(m.Meeting)).one().held_on == date(2199, 12, 31)
        assert len(s.exec(select(m.MeetingAttendance)).all()) == 1


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    ("args", "field", "option"),
    [
        (
            [
                "schedule",
                "add",
                "water",
                "coordination-meeting",
                "--start",
                "2027-02-01",
                "--timezone",
                "Europe",
            ],
            "timezone",
            "--timezone",
        ),
        (
            [
                "schedule",
                "add",
                "water",
                "coordination-meeting",
                "--start",
                "2027-02-01",
                "--grace-days",
                "999999999999",
            ],
            "grace_days",
            "--grace-days",
        ),
        (
            [
                "schedule",
                "add",
                "water",
                "coordination-meeting",
                "--start",
                "2027-02-01",
                "--lead-days",
                "3650000",
            ],
            "lead_days",
            "--lead-days",
        ),
        (
            [
                "schedule",
                "add",
                "water",
                "coordination-meeting",
                "--start",
                "0001-01-01",
                "--timezone",
                "Asia/Tokyo",
            ],
            "start",
            "--start",
        ),
        (["partner", "add", "water", "Evil\nName", "--sector", "ngo"], "name", None),
        (
            [
                "partner",
                "add",
                "water",
                "A",
                "--sector",
                "ngo",
                "--email",
                "a@b.org\r\nBcc: c@d.org",
            ],
            "email",
            "--email",
        ),
        (["record", "lesson", "water", "a\x00b"], "text", None),
        (["record", "meeting", "water", "--on", "2200-01-01"], "on", "--on"),
        (["record", "profile", "water", "--challenge", "x" * 20_001], "challenge", "--challenge"),
    ],
)
def test_the_cli_refuses_with_one_line_and_exit_7(
    run: Run, args: list[str], field: str, option: str | None
) -> None:
    """The message names the field; the command line adds the option that gave it."""
    line = one_line(run(*args, code=7))
    assert f": {field}: " in line, line
    if option is not None:
        assert line.endswith(f" [{option}]"), line
    else:
        assert not line.endswith("]"), line
    assert "\n" not in line.removeprefix("mspflow: ")


def test_partner_update_validates_like_partner_add(run: Run) -> None:
    run("partner", "add", "water", NGO, "--sector", "ngo")
    line = one_line(run("partner", "update", "water", NGO, "--email", "x\r\n@y.org", code=7))
    assert "--email" in line
    one_line(run("partner", "update", "water", NGO, "--sector", "", code=7))
    run("partner", "update", "water", NGO, "--email", "lina@vwn.example.org")


@pytest.mark.parametrize("option", ["--start", "--at", "--timezone", "--lead-days", "--grace-days"])
@pytest.mark.parametrize("value", ["", "   "])
def test_an_option_given_empty_is_refused(
    run: Run, engine: Engine, option: str, value: str
) -> None:
    """On the command line an empty value is a mistake; in a CSV file it means "not given"."""
    before = counts(engine)
    args = ["schedule", "add", "water", "monitoring", "--start", "2027-03-04"]
    args = [*args, option, value] if option != "--start" else [*args[:4], option, value]
    line = one_line(run(*args, code=7))
    field = option.removeprefix("--").replace("-", "_")
    assert line.startswith(f"mspflow: schedule: {field} is empty"), line
    assert line.endswith(f" [{option}]"), line
    assert counts(engine) == before
