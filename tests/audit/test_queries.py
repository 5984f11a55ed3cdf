"""``audit log`` filters and the ``history`` timeline."""

from __future__ import annotations

import json

import pytest

from mspflow.store import models as m
from tests.audit.conftest import Portfolio


def seqs(portfolio: Portfolio, *args: str) -> list[int]:
    rows = json.loads(portfolio.run("audit", "log", "--json", *args).output)
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    return [r["seq"] for r in rows]


def test_log_lists_every_event_oldest_first(portfolio: Portfolio) -> None:
    events = portfolio.events()
    lines = portfolio.run("audit", "log").output.splitlines()
    assert len(lines) == len(events)
    assert lines[0].startswith(f"water #1 {events[0].at[:19]}Z ana (secretariat) create")
    assert seqs(portfolio) == [e.seq for e in events]
    rows = json.loads(portfolio.run("audit", "log", "--json").output)
    assert set(rows[0]) >= {"seq", "partnership", "at", "actor", "role", "kind", "from", "to"}


def test_log_by_partnership_actor_and_kind(portfolio: Portfolio) -> None:
    events = portfolio.events()
    assert seqs(portfolio, "-p", "png") == [e.seq for e in events if e.partnership == "png"]
    both = seqs(portfolio, "-p", "png", "-p", "safe-water-pursat")
    assert both == [e.seq for e in events if e.partnership in ("png", "safe-water-pursat")]
    assert seqs(portfolio, "--actor", "scheduler") == [
        e.seq for e in events if e.kind == "review-due"
    ]
    assert len(seqs(portfolio, "--actor", "scheduler")) == 1
    waive = seqs(portfolio, "--kind", "waive", "--kind", "revisit")
    assert waive == [e.seq for e in events if e.kind in ("waive", "revisit")] and len(waive) == 2
    assert seqs(portfolio, "--actor", "ivo") == []


def test_log_by_step_matches_leaving_entering_and_staying(portfolio: Portfolio) -> None:
    events = portfolio.events()
    want = [e.seq for e in events if "reviewing" in (e.from_state, e.to_state)]
    assert seqs(portfolio, "--step", "9") == want == seqs(portfolio, "--step", "reviewing")
    want = [e.seq for e in events if "getting-started" in (e.from_state, e.to_state)]
    assert len(want) == 3  # created, a criterion waived, left
    assert seqs(portfolio, "--step", "1", "-p", "water") == want == seqs(portfolio, "--step", "1")
    assert seqs(portfolio, "--step", "institutionalized") == [events[-3].seq]


def test_log_by_time_range(portfolio: Portfolio) -> None:
    events = portfolio.events()
    middle = events[len(events) // 2].at
    assert seqs(portfolio, "--since", middle) == [e.seq for e in events if e.at >= middle]
    assert seqs(portfolio, "--until", middle) == [e.seq for e in events if e.at < middle]
    day = seqs(portfolio, "--since", "2027-01-04", "--until", "2027-01-05")
    assert day == [e.seq for e in events if e.at.startswith("2027-01-04")] and day
    offset = seqs(portfolio, "--since", "2027-01-04T10:00:00+02:00", "--until", "2027-01-05")
    assert offset == day  # 08:00 UTC: everything of that day (it started at 09:00 UTC)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["-p", "nowhere"], 4, "no partnership 'nowhere'"),
        (["--step", "13"], 4, "no step '13'"),
        (["--since", "yesterday"], 2, "not an ISO 8601"),
        (
            ["--since", "2027-02-01", "--until", "2027-01-01"],
            7,
            "the start of the period must be before its end [--since]",
        ),
    ],
)
def test_log_refuses_bad_filters(
    portfolio: Portfolio, args: list[str], code: int, says: str
) -> None:
    assert says in portfolio.run("audit", "log", *args, code=code).output


def test_history_timeline_shows_evidence_waivers_and_gate_debt(portfolio: Portfolio) -> None:
    out = portfolio.run("history", "water", actor="ivo").output
    lines = out.splitlines()
    assert lines[0].startswith("water: Safe water (msp-12-step")
    assert "ana (secretariat) advance: 1 Getting started -> 2 Agenda setting and scoping" in out
    assert "evidence   1.4   partner-identified: 3 partner" in out
    assert "[partner #1, #2, #3]" in out
    # The waiver shows where it took effect, with its author and reason.
    assert "    waived: case-for-partnering (task 1.3), a criterion of 1 Getting started" in out
    waived = next(line for line in lines if line.strip().startswith("waived     "))
    assert "1.3   case-for-partnering by ana [#" in waived
    assert waived.endswith("The charter makes the case")
    assert "scheduler (system) review-due: 8 Measuring progress -> 9 Reviewing" in out
    assert "schedule   review-panel due 2027-" in out
    assert "outcome    transfer-to-institution" in out
    png = portfolio.run("history", "png", actor="ivo").output
    assert "onboard: -> 7 Delivering on the SDGs" in png
    assert "gate debt  27 criteria of steps 1-6 not evidenced" in png
    assert "reason: A partner withdrew" in png
    rows = json.loads(portfolio.run("history", "png", "--json").output)
    assert [r["kind"] for r in rows] == ["onboard", "revisit"]
    assert portfolio.count(m.HistoryEvent) == len(portfolio.events())
