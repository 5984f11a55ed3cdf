"""Store and engine contracts, written once and run on every backend in BACKENDS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from mspflow import history
from mspflow.auth import Actor
from mspflow.definition import Workflow
from mspflow.errors import (
    ConcurrentChange,
    DefinitionError,
    GateNotMet,
    InvalidInput,
    NotPermitted,
    StorageError,
)
from mspflow.machine import machine_for
from mspflow.services import Mspflow
from mspflow.services.evidence import sdg_targets
from mspflow.services.partnerships import Partnerships
from mspflow.store import check_schema, read_session, write_session
from mspflow.store import models as m
from mspflow.store.definitions import definition_for
from mspflow.store.lookup import find
from mspflow.walk import WALK
from tests.conftest import BACKENDS, SECRETARIAT

AUDITOR = Actor("ivo", "auditor")
PARTNER = Actor("pia", "partner")


def new(service: Mspflow, wf: Workflow, text_: str, **kw: Any) -> str:
    return service.partnerships.create(name="Test MSP", workflow=wf, definition_text=text_, **kw).id


def put(service: Mspflow, ref: str, step: int, skip: str | None = None) -> None:
    from mspflow.walk import record_piece

    for criterion, records in WALK[step].items():
        if criterion != skip:
            record_piece(service.as_user(SECRETARIAT), ref, records)


def events(engine: Engine) -> list[m.HistoryEvent]:
    with read_session(engine) as s:
        return list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))


def state(service: Mspflow, ref: str) -> tuple[str, int]:
    with read_session(service.ctx.engine) as s:
        p = find(s, ref)
        return p.state, p.version


# --------------------------------------------------------------------------- schema


def test_schema_version_is_stamped_and_checked(engine: Engine) -> None:
    check_schema(engine)
    with write_session(engine) as s:
        s.execute(text("UPDATE schema_version SET version = 99"))
    with pytest.raises(StorageError, match=r"schema version 99 is not supported.*upgrade mspflow"):
        check_schema(engine)


def test_not_an_mspflow_database(db_url: str) -> None:
    from mspflow.store import make_engine

    other = make_engine(db_url, create_dirs=True)
    with other.begin() as conn:
        conn.execute(text("CREATE TABLE t (x int)"))
    with pytest.raises(StorageError, match="not an mspflow database"):
        check_schema(other)
    other.dispose()


def test_history_rows_cannot_be_changed_through_sql(
    engine: Engine, service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    new(service, msp, msp_text)
    for statement in ("UPDATE history_event SET actor = 'x'", "DELETE FROM history_event"):
        with pytest.raises(Exception, match="append-only"), write_session(engine) as s:
            s.execute(text(statement))
    assert len(events(engine)) == 1


# --------------------------------------------------------------------------- engine


def test_one_shared_machine_and_no_models_left(
    service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    a = new(service, msp, msp_text)
    b = new(service, msp, msp_text)
    for ref in (a, b):
        put(service, ref, 1)
        service.partnerships.move(partnership=ref, kind="advance")
    machine = machine_for(msp)
    assert machine is machine_for(msp)
    assert len(machine.models) == 0


def test_definition_is_pinned_by_content(
    service: Mspflow, tmp_path: Path, msp: Workflow, msp_text: str
) -> None:
    from mspflow.definition import load_workflow

    ref = new(service, msp, msp_text)
    edited = tmp_path / "edited.yaml"
    edited.write_text(
        msp_text.replace(
            "        title: challenge framed\n", "        title: the challenge, framed\n"
        )
    )
    changed = load_workflow(edited)
    assert changed.content_hash != msp.content_hash
    with read_session(service.ctx.engine) as s:
        p = find(s, ref)
        assert p.workflow_hash == msp.content_hash
        assert definition_for(s, p).step(1).gate[0].title == "challenge framed"


def test_gate_refusal_lists_every_unmet_criterion(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1, skip="lead-and-support")
    before = state(service, ref)
    with pytest.raises(GateNotMet) as info:
        service.partnerships.move(partnership=ref, kind="advance")
    assert [u.criterion for u in info.value.unmet] == ["lead-and-support"]
    assert info.value.unmet[0].task == "1.2"
    assert info.value.code == "gate-not-met"
    assert state(service, ref) == before and len(events(engine)) == 1


def test_change_before_the_write_transaction_is_refused(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    """Evidence recorded between the move's first read and its write transaction: exit 5."""
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    other = Mspflow(engine=engine, clock=service.clock, actor=SECRETARIAT)

    class Interleaved(Partnerships):
        def prepare(self, ref_: str) -> tuple[int, Workflow]:
            found = super().prepare(ref_)
            other.evidence.record(partnership=ref_, kind="lesson", values={"text": "meanwhile"})
            return found

    racer = Interleaved(service.ctx)
    before_events = len(events(engine))
    with pytest.raises(ConcurrentChange) as info:
        racer.move(partnership=ref, kind="advance")
    assert info.value.code == "conflict"
    assert state(service, ref)[0] == "getting-started"
    assert len(events(engine)) == before_events
    service.partnerships.move(partnership=ref, kind="advance")  # a retry succeeds
    assert state(service, ref)[0] == "agenda-setting-and-scoping"


def bump_version(s: Session, slug: str) -> None:
    """What a writer that committed meanwhile leaves for the versioned UPDATE to find."""
    s.execute(text("UPDATE partnership SET version = version + 1 WHERE slug = :s"), {"s": slug})


def test_change_inside_the_write_transaction_is_refused_by_the_versioned_update(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine, monkeypatch: Any
) -> None:
    """The row changes after the move read it in its own transaction, as the gate is
    evaluated: only the versioned UPDATE (``version == seen``) can notice, and it must."""
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    _, version = state(service, ref)

    from mspflow.services import partnerships

    read_waivers = partnerships.waivers

    def interleaved(session: Session, p: m.Partnership) -> dict[str, str]:
        bump_version(session, p.slug)
        return read_waivers(session, p)

    monkeypatch.setattr(partnerships, "waivers", interleaved)
    before_events = len(events(engine))
    with pytest.raises(ConcurrentChange) as info:
        service.partnerships.move(partnership=ref, kind="advance")
    monkeypatch.setattr(partnerships, "waivers", read_waivers)
    assert info.value.code == "conflict"
    # Nothing of the move is kept: no event, the state and version as before.
    assert state(service, ref) == ("getting-started", version)
    assert len(events(engine)) == before_events
    service.partnerships.move(partnership=ref, kind="advance")
    assert state(service, ref) == ("agenda-setting-and-scoping", version + 1)


def test_the_versioned_update_writes_only_the_version_it_was_given(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    _, version = state(service, ref)
    now = service.clock.now()
    with pytest.raises(ConcurrentChange), write_session(engine) as s:
        p = find(s, ref)
        bump_version(s, ref)
        service.partnerships.bump(s, p, version, now, state="planning")
    assert state(service, ref) == ("getting-started", version)
    with write_session(engine) as s:
        p = find(s, ref)
        service.partnerships.bump(s, p, version, now, state="planning")
        assert (p.state, p.version) == ("planning", version + 1)
    assert state(service, ref) == ("planning", version + 1)


@pytest.mark.parametrize("backend", [BACKENDS[1]], indirect=True)
def test_a_commit_from_another_connection_is_refused_by_the_versioned_update(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    """PostgreSQL: a real second transaction commits a change after ours read the row
    (no row lock held); our versioned UPDATE then matches no row and fails."""
    ref = new(service, msp, msp_text)
    _, version = state(service, ref)
    with pytest.raises(ConcurrentChange), write_session(engine) as s:
        p = find(s, ref)
        with engine.begin() as other:
            other.execute(
                text("UPDATE partnership SET version = version + 1 WHERE slug = :s"), {"s": ref}
            )
        service.partnerships.bump(s, p, version, service.clock.now(), state="planning")
    assert state(service, ref) == ("getting-started", version + 1)


def test_stale_expected_version_is_refused(service: Mspflow, msp: Workflow, msp_text: str) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    _, version = state(service, ref)
    with pytest.raises(ConcurrentChange):
        service.partnerships.move(partnership=ref, kind="advance", expect_version=version - 1)
    service.partnerships.move(partnership=ref, kind="advance", expect_version=version)


def test_failure_after_the_event_leaves_neither(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    before, count = state(service, ref), len(events(engine))

    with pytest.raises(RuntimeError), service.ctx.writing(ref) as s:
        service.partnerships.move(partnership=ref, kind="advance", session=s)
        raise RuntimeError("power cut")  # after the move, before the commit
    assert state(service, ref) == before
    assert len(events(engine)) == count


def test_roles(service: Mspflow, msp: Workflow, msp_text: str) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    for actor in (AUDITOR, PARTNER):
        with pytest.raises(NotPermitted) as info:
            service.as_user(actor).partnerships.move(partnership=ref, kind="advance")
        assert info.value.code == "not-permitted"
        with pytest.raises(NotPermitted):
            service.as_user(actor).evidence.record(
                partnership=ref, kind="lesson", values={"text": "x"}
            )
        with pytest.raises(NotPermitted):
            service.as_user(actor).partnerships.waive(
                partnership=ref, criterion="challenge-framed", reason="no"
            )
        with pytest.raises(NotPermitted):
            service.as_user(actor).partnerships.create(
                name="x", workflow=msp, definition_text=msp_text
            )


def test_revisits_need_a_reason_and_an_earlier_step_of_modules_a_and_b(
    service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    ref = new(service, msp, msp_text, at_step="7")
    with pytest.raises(InvalidInput, match="reason is required"):
        service.partnerships.move(partnership=ref, kind="revisit", dest="2")
    with pytest.raises(InvalidInput, match="cannot revisit"):
        service.partnerships.move(partnership=ref, kind="revisit", dest="8", reason="x")
    service.partnerships.move(
        partnership=ref, kind="revisit", dest="5", reason="roles changed (7.2)"
    )
    assert state(service, ref)[0] == "structuring"
    service.partnerships.move(partnership=ref, kind="revisit", dest="1", reason="stuck")
    assert state(service, ref)[0] == "getting-started"


def test_waiver_is_kept_in_history_and_holds_for_one_visit(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1, skip="case-for-partnering")
    service.partnerships.waive(
        partnership=ref, criterion="case-for-partnering", reason="charter makes the case"
    )
    move = service.partnerships.move(partnership=ref, kind="advance")
    assert move.waived == ["case-for-partnering"]
    last = events(engine)[-1]
    assert json.loads(last.waived) == ["case-for-partnering"]
    assert "case-for-partnering" not in json.loads(last.evidence)
    # Back at step 1 later, the old waiver no longer counts.
    service.partnerships.move(partnership=ref, kind="revisit", dest="1", reason="new partners")
    with pytest.raises(GateNotMet, match="case-for-partnering"):
        service.partnerships.move(partnership=ref, kind="advance")
    with pytest.raises(InvalidInput, match="needs a reason"):
        service.partnerships.waive(partnership=ref, criterion="case-for-partnering", reason=" ")


def test_onboarding_keeps_gate_debt_until_backfilled_or_waived(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text, at_step="3")
    debt = service.partnerships.gate_debt(partnership=ref)
    assert {(d.step, d.status) for d in debt} == {(1, "open"), (2, "open")}
    step1 = [c.id for c in msp.step(1).gate]
    step2 = [c.id for c in msp.step(2).gate]
    assert sorted((d.step, d.criterion) for d in debt) == sorted(
        [(1, c) for c in step1] + [(2, c) for c in step2]
    )
    put(service, ref, 1)
    done = service.partnerships.backfill(partnership=ref)
    settled, still = done.settled, done.open
    assert sorted(settled) == sorted(f"1:{c}" for c in step1)
    assert sorted(still) == sorted(f"2:{c}" for c in step2)
    service.partnerships.waive(
        partnership=ref, criterion="goal-set", reason="set by the founding charter", step="2"
    )
    statuses = {d.criterion: d.status for d in service.partnerships.gate_debt(partnership=ref)}
    assert statuses["goal-set"] == "waived" and statuses["challenge-framed"] == "backfilled"
    assert [e.kind for e in events(engine)] == ["onboard", "backfill", "waive"]


def test_scale_up_replica_inherits_lessons(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text, at_step="11")
    service.evidence.record(partnership=ref, kind="lesson", values={"text": "Procure early"})
    with pytest.raises(InvalidInput, match="dimension"):
        service.partnerships.scale_up(partnership=ref, dimensions=["cosmic"], description="x")
    replica = service.partnerships.scale_up(
        partnership=ref,
        dimensions=["physical"],
        description="Next province",
        replica="Replica",
        start_step="4",
    )
    assert replica.replica is not None
    with read_session(engine) as s:
        child = find(s, replica.replica)
        assert child.state == "planning" and child.parent_id == find(s, ref).id
        lessons = s.exec(select(m.Lesson).where(m.Lesson.partnership_id == child.id)).all()
        assert [(x.text, x.inherited_from) for x in lessons] == [("Procure early", child.parent_id)]
    with pytest.raises(InvalidInput, match="possible steps"):
        service.partnerships.scale_up(
            partnership=ref,
            dimensions=["physical"],
            description="x",
            replica="Bad",
            start_step="7",
        )
    service.partnerships.move(partnership=ref, kind="advance")  # the decision opens step 11's gate


def test_history_chain_verifies_and_detects_an_edit(
    service: Mspflow, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    service.partnerships.move(partnership=ref, kind="advance")
    chain = events(engine)
    assert list(history.verify(chain)) == []
    chain[1].actor = "mallory"
    assert [b.seq for b in history.verify(chain)] == [2]


def test_sdg_targets_are_the_169() -> None:
    codes = sdg_targets()
    assert len(codes) == 169 and {"6.1", "6.a", "1.b", "17.19"} <= codes and "17.a" not in codes


def test_bulk_import_is_all_or_nothing(
    service: Mspflow, msp: Workflow, msp_text: str, tmp_path: Path, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    bad = tmp_path / "evidence.yaml"
    bad.write_text(
        "- kind: sdg\n  code: 6.1\n"
        "- kind: partner\n  name: A\n  sector: government\n  can_decide: true\n"
        "- kind: sdg\n  code: 6.99\n"
        "- kind: risk\n  area: weather\n  description: floods\n"
    )
    with pytest.raises(DefinitionError) as info:
        service.evidence.import_file(partnership=ref, path=bad)
    lines = info.value.lines()
    assert any(":7:" in x and "6.99" in x for x in lines), lines
    assert any(":9:" in x and "weather" in x for x in lines), lines
    with read_session(engine) as s:
        assert s.exec(select(m.SdgTarget)).all() == []
        assert s.exec(select(m.Partner)).all() == []
    good = tmp_path / "evidence.csv"
    good.write_text("kind,code,name,sector,can_decide\nsdg,6.1,,,\npartner,,A,government,true\n")
    done = service.evidence.import_file(partnership=ref, path=good)
    assert done.counts == {"sdg": 1, "partner": 1}


def test_cadence_looser_than_the_minimum_names_the_task(
    service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    ref = new(service, msp, msp_text)
    with pytest.raises(
        InvalidInput,
        match=r"a quarterly coordination meeting is less frequent than monthly, "
        r"the minimum of task 7\.1",
    ):
        service.evidence.record(
            partnership=ref,
            kind="schedule",
            values={"kind": "coordination-meeting", "cadence": "quarterly", "start": "2027-02-01"},
        )
