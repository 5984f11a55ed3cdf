"""One partnership from step 1 to every step-12 outcome, through the command line.

The walk records only the evidence the gates ask for (mspflow.walk). After each
command the partnership is read back through a new database connection. For
every criterion, a run that leaves out just that criterion's records is refused
at the gate with exit 3, naming the criterion and its task id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import col, select

from mspflow import history
from mspflow.cli.evidence import option_name
from mspflow.definition import find_workflow
from mspflow.services.evidence import RECORDS
from mspflow.store import make_engine, read_session
from mspflow.store.models import HistoryEvent, Partnership
from mspflow.walk import WALK
from tests.conftest import BACKENDS, Backend, invoke, open_backend

P = "water"
WF = find_workflow("msp-12-step")


def argv(kind: str, values: Mapping[str, Any]) -> list[str]:
    """The command line that records ``(kind, values)``."""
    if kind == "partner-update":
        args = ["partner", "update", P, values["name"]]
        for name, value in values.items():
            if name != "name":
                args += ["--" + name.replace("_", "-"), str(value)]
        return args
    spec = RECORDS[kind]
    args = ["record", kind, P]
    for f in spec.fields:
        value = values.get(f.name)
        if value is None:
            continue
        if f.argument:
            args.append(str(value))
        elif f.type == "bool":
            if value:
                args.append(option_name(f))
        elif f.multiple:
            for item in value:
                args += [option_name(f), str(item)]
        else:
            args += [option_name(f), str(value)]
    return args


@dataclass
class Db:
    url: str
    backend: Backend

    @property
    def env(self) -> dict[str, str]:
        return {
            "MSPFLOW_DATABASE_URL": self.url,
            "MSPFLOW_ACTOR": "ana",
            "MSPFLOW_NOW": "2027-03-01T09:00:00Z",
        }

    def run(self, *args: str, code: int = 0) -> str:
        result = invoke(*args, env=self.env)
        assert result.exit_code == code, (args, result.output)
        return result.output

    def reload(self) -> tuple[str, int, int]:
        """(state, version, number of events) through a brand-new connection."""
        engine = make_engine(self.url)
        try:
            with read_session(engine) as s:
                p = s.exec(select(Partnership).where(Partnership.slug == P)).one()
                events = s.exec(select(HistoryEvent).where(HistoryEvent.partnership == P)).all()
                return p.state, p.version, len(events)
        finally:
            engine.dispose()

    def events(self) -> list[HistoryEvent]:
        engine = make_engine(self.url)
        try:
            with read_session(engine) as s:
                return list(s.exec(select(HistoryEvent).order_by(col(HistoryEvent.seq))))
        finally:
            engine.dispose()

    def copy(self) -> Db:
        return Db(self.backend.copy(self.url), self.backend)

    @contextmanager
    def scratch(self) -> Iterator[Db]:
        """A copy for one test, removed afterwards."""
        db = self.copy()
        try:
            yield db
        finally:
            self.backend.drop(db.url)

    def record_step(self, step: int, skip: str | None = None) -> None:
        for criterion, records in WALK[step].items():
            if criterion == skip:
                continue
            for kind, values in records:
                before = self.reload()
                self.run(*argv(kind, values))
                after = self.reload()
                # Evidence changes the version, never the state or the history.
                assert (after[0], after[1], after[2]) == (before[0], before[1] + 1, before[2])

    def advance(self, *extra: str) -> dict[str, Any]:
        before = self.reload()
        data: dict[str, Any] = json.loads(self.run("advance", P, "--json", *extra))
        state, version, events = self.reload()
        assert (state, version, events) == (data["state"], data["version"], before[2] + 1)
        assert state != before[0]
        return data


@pytest.fixture(scope="module", params=BACKENDS)
def walk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Db, dict[int, Db]]]:
    """Walk 1 -> 12 once per backend; keep a snapshot from before each step's evidence."""
    with open_backend(request, request.param, tmp_path_factory.mktemp("walk")) as backend:
        db = Db(backend.new_url(), backend)
        db.run("init", "--admin", "ana")
        db.run("partnership", "create", "Safe water", "--id", P)
        snapshots: dict[int, Db] = {}
        for step in range(1, 11):
            snapshots[step] = db.copy()
            db.record_step(step)
            db.advance(*(["--to", "11"] if step == 10 else []))
        snapshots[11] = db.copy()
        db.run("scale-up", P, "--dimension", "social", "--description", "Reach more provinces")
        db.advance()
        snapshots[12] = db.copy()
        yield db, snapshots


def test_walk_reaches_moving_on_with_one_event_per_move(walk: tuple[Db, dict[int, Db]]) -> None:
    db, _ = walk
    state, _version, _ = db.reload()
    assert state == "moving-on"
    events = db.events()
    moves = [e for e in events if e.from_state != e.to_state]
    assert [WF.step(e.to_state).number for e in moves if e.to_state] == [*range(1, 12), 12]
    assert len(events) == len(moves) + 1  # plus the scale-up decision
    assert list(history.verify(events)) == []


CRITERIA = [(step, c) for step, pieces in WALK.items() for c in pieces]


# On SQLite only: which criterion a missing record leaves unmet is the gates' logic, the
# same on both backends; PostgreSQL walks every gate above and refuses unmet ones in the
# store contract tests. (Both backends here took 100 s of the suite.)
@pytest.mark.parametrize("walk", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("step", "criterion"), CRITERIA, ids=[f"{s}-{c}" for s, c in CRITERIA])
def test_leaving_out_one_piece_fails_that_criterion(
    walk: tuple[Db, dict[int, Db]], step: int, criterion: str
) -> None:
    with walk[1][step].scratch() as db:
        db.record_step(step, skip=criterion)
        before = db.reload()
        # From revising, scaling up needs the lessons and going back to delivery the revision.
        to = "7" if criterion == "revisions-recorded" else "11"
        out = db.run("advance", P, *(["--to", to] if step == 10 else []), code=3)
        task = WF.step(step).criterion(criterion).task  # type: ignore[union-attr]
        assert "1 criterion(s) unmet" in out, out
        assert f"task {task} [{criterion}]" in out
        assert db.reload() == before  # nothing written


@pytest.mark.parametrize("outcome", [o.id for o in WF.outcomes])
def test_every_outcome(walk: tuple[Db, dict[int, Db]], outcome: str) -> None:
    with walk[1][12].scratch() as db:
        _conclude(db, outcome)


def _conclude(db: Db, outcome: str) -> None:
    target = WF.outcome(outcome)
    assert target is not None
    extra = ["--reason", target.reasons[0]] if target.reasons else []
    if target.reasons:
        db.run("conclude", P, "--outcome", outcome, code=7)  # the reason is required
    out = json.loads(db.run("conclude", P, "--outcome", outcome, "--json", *extra))
    assert out["state"] == target.dest
    assert db.reload()[0] == target.dest
    assert out["status"] == ("closed" if target.final else "active")
    if target.final:
        assert "is closed" in db.run("advance", P, code=7)
        assert "is closed" in db.run("record", "lesson", P, "late", code=7)
    events = db.events()
    assert events[-1].kind == "conclude" and json.loads(events[-1].data)["outcome"] == outcome
    assert list(history.verify(events)) == []
