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
from mspflow.engine import PartnershipService, definition_for, machine_for
from mspflow.errors import (
    ConcurrentChange,
    DefinitionError,
    GateNotMet,
    InvalidInput,
    NotPermitted,
    StorageError,
)
from mspflow.evidence import import_file, record, sdg_targets
from mspflow.store import check_schema, read_session, write_session
from mspflow.store import models as m
from mspflow.walk import WALK
from tests.conftest import BACKENDS, SECRETARIAT

AUDITOR = Actor("ivo", "auditor")
PARTNER = Actor("pia", "partner")


def new(service: PartnershipService, wf: Workflow, text_: str, **kw: Any) -> str:
    return service.create(SECRETARIAT, name="Test MSP", wf=wf, definition_text=text_, **kw).slug


def put(service: PartnershipService, ref: str, step: int, skip: str | None = None) -> None:
    from mspflow.demo import record_piece

    for criterion, records in WALK[step].items():
        if criterion != skip:
            record_piece(service, SECRETARIAT, ref, records)


def events(engine: Engine) -> list[m.HistoryEvent]:
    with read_session(engine) as s:
        return list(s.exec(select(m.HistoryEvent).order_by(col(m.HistoryEvent.seq))))


def state(service: PartnershipService, ref: str) -> tuple[str, int]:
    with read_session(service.engine) as s:
        p = service.get(s, ref)
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
    engine: Engine, service: PartnershipService, msp: Workflow, msp_text: str
) -> None:
    new(service, msp, msp_text)
    for statement in ("UPDATE history_event SET actor = 'x'", "DELETE FROM history_event"):
        with pytest.raises(Exception, match="append-only"), write_session(engine) as s:
            s.execute(text(statement))
    assert len(events(engine)) == 1


# --------------------------------------------------------------------------- engine


def test_one_shared_machine_and_no_models_left(
    service: PartnershipService, msp: Workflow, msp_text: str
) -> None:
    a = new(service, msp, msp_text)
    b = new(service, msp, msp_text)
    for ref in (a, b):
        put(service, ref, 1)
        service.move(SECRETARIAT, ref, kind="advance")
    machine = machine_for(msp)
    assert machine is machine_for(msp)
    assert len(machine.models) == 0


def test_definition_is_pinned_by_content(
    service: PartnershipService, tmp_path: Path, msp: Workflow, msp_text: str
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
    with read_session(service.engine) as s:
        p = service.get(s, ref)
        assert p.workflow_hash == msp.content_hash
        assert definition_for(s, p).step(1).gate[0].title == "challenge framed"


def test_gate_refusal_lists_every_unmet_criterion(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1, skip="lead-and-support")
    before = state(service, ref)
    with pytest.raises(GateNotMet) as info:
        service.move(SECRETARIAT, ref, kind="advance")
    assert [u.criterion for u in info.value.unmet] == ["lead-and-support"]
    assert info.value.unmet[0].task == "1.2"
    assert info.value.exit_code == 3
    assert state(service, ref) == before and len(events(engine)) == 1


def test_change_before_the_write_transaction_is_refused(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    """Evidence recorded between the move's first read and its write transaction: exit 5."""
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    other = PartnershipService(engine, service.clock)

    class Interleaved(PartnershipService):
        def seen_version(self, ref_: str) -> int:
            found = super().seen_version(ref_)
            record(other, SECRETARIAT, ref_, "lesson", {"text": "meanwhile"})
            return found

    racer = Interleaved(engine, service.clock)
    before_events = len(events(engine))
    with pytest.raises(ConcurrentChange) as info:
        racer.move(SECRETARIAT, ref, kind="advance")
    assert info.value.exit_code == 5
    assert state(service, ref)[0] == "getting-started"
    assert len(events(engine)) == before_events
    service.move(SECRETARIAT, ref, kind="advance")  # a retry succeeds
    assert state(service, ref)[0] == "agenda-setting-and-scoping"


def bump_version(s: Session, slug: str) -> None:
    """What a writer that committed meanwhile leaves for the versioned UPDATE to find."""
    s.execute(text("UPDATE partnership SET version = version + 1 WHERE slug = :s"), {"s": slug})


def test_change_inside_the_write_transaction_is_refused_by_the_versioned_update(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    """The row changes after the move read it in its own transaction, as the gate is
    evaluated: only the versioned UPDATE (``version == seen``) can notice, and it must."""
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    _, version = state(service, ref)

    class Interleaved(PartnershipService):
        def _waivers(self, session: Session, p: m.Partnership) -> dict[str, str]:
            bump_version(session, p.slug)
            return super()._waivers(session, p)

    before_events = len(events(engine))
    with pytest.raises(ConcurrentChange) as info:
        Interleaved(engine, service.clock).move(SECRETARIAT, ref, kind="advance")
    assert info.value.exit_code == 5
    # Nothing of the move is kept: no event, the state and version as before.
    assert state(service, ref) == ("getting-started", version)
    assert len(events(engine)) == before_events
    service.move(SECRETARIAT, ref, kind="advance")
    assert state(service, ref) == ("agenda-setting-and-scoping", version + 1)


def test_the_versioned_update_writes_only_the_version_it_was_given(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    _, version = state(service, ref)
    now = service.clock.now()
    with pytest.raises(ConcurrentChange), write_session(engine) as s:
        p = service.get(s, ref)
        bump_version(s, ref)
        service._bump(s, p, version, now, state="planning")
    assert state(service, ref) == ("getting-started", version)
    with write_session(engine) as s:
        p = service.get(s, ref)
        service._bump(s, p, version, now, state="planning")
        assert (p.state, p.version) == ("planning", version + 1)
    assert state(service, ref) == ("planning", version + 1)


@pytest.mark.parametrize("backend", [BACKENDS[1]], indirect=True)
def test_a_commit_from_another_connection_is_refused_by_the_versioned_update(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    """PostgreSQL: a real second transaction commits a change after ours read the row
    (no row lock held); our versioned UPDATE then matches no row and fails."""
    ref = new(service, msp, msp_text)
    _, version = state(service, ref)
    with pytest.raises(ConcurrentChange), write_session(engine) as s:
        p = service.get(s, ref)
        with engine.begin() as other:
            other.execute(
                text("UPDATE partnership SET version = version + 1 WHERE slug = :s"), {"s": ref}
            )
        service._bump(s, p, version, service.clock.now(), state="planning")
    assert state(service, ref) == ("getting-started", version + 1)


def test_stale_expected_version_is_refused(
    service: PartnershipService, msp: Workflow, msp_text: str
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    _, version = state(service, ref)
    with pytest.raises(ConcurrentChange):
        service.move(SECRETARIAT, ref, kind="advance", expect_version=version - 1)
    service.move(SECRETARIAT, ref, kind="advance", expect_version=version)


def test_failure_after_the_event_leaves_neither(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    before, count = state(service, ref), len(events(engine))

    def crash(*_: Any) -> None:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        service.move(SECRETARIAT, ref, kind="advance", on_moved=crash)
    assert state(service, ref) == before
    assert len(events(engine)) == count


def test_roles(service: PartnershipService, msp: Workflow, msp_text: str) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    for actor in (AUDITOR, PARTNER):
        with pytest.raises(NotPermitted) as info:
            service.move(actor, ref, kind="advance")
        assert info.value.exit_code == 6
        with pytest.raises(NotPermitted):
            record(service, actor, ref, "lesson", {"text": "x"})
        with pytest.raises(NotPermitted):
            service.waive(actor, ref, "challenge-framed", "no")
        with pytest.raises(NotPermitted):
            service.create(actor, name="x", wf=msp, definition_text=msp_text)


def test_revisits_need_a_reason_and_a_foundational_target(
    service: PartnershipService, msp: Workflow, msp_text: str
) -> None:
    ref = new(service, msp, msp_text, at_step="7")
    with pytest.raises(InvalidInput, match="reason is required"):
        service.move(SECRETARIAT, ref, kind="revisit", dest="2")
    with pytest.raises(InvalidInput, match="cannot revisit"):
        service.move(SECRETARIAT, ref, kind="revisit", dest="6", reason="x")
    service.move(SECRETARIAT, ref, kind="revisit", dest="5", reason="roles changed (7.2)")
    assert state(service, ref)[0] == "structuring"
    service.move(SECRETARIAT, ref, kind="revisit", dest="1", reason="stuck")
    assert state(service, ref)[0] == "getting-started"


def test_waiver_is_kept_in_history_and_holds_for_one_visit(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1, skip="case-for-partnering")
    service.waive(SECRETARIAT, ref, "case-for-partnering", "charter makes the case")
    move = service.move(SECRETARIAT, ref, kind="advance")
    assert move.waived == ["case-for-partnering"]
    last = events(engine)[-1]
    assert json.loads(last.waived) == ["case-for-partnering"]
    assert "case-for-partnering" not in json.loads(last.evidence)
    # Back at step 1 later, the old waiver no longer counts.
    service.move(SECRETARIAT, ref, kind="revisit", dest="1", reason="new partners")
    with pytest.raises(GateNotMet, match="case-for-partnering"):
        service.move(SECRETARIAT, ref, kind="advance")
    with pytest.raises(InvalidInput, match="needs a reason"):
        service.waive(SECRETARIAT, ref, "case-for-partnering", " ")


def test_onboarding_keeps_gate_debt_until_backfilled_or_waived(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text, at_step="3")
    with read_session(engine) as s:
        debt = service.gate_debt(s, service.get(s, ref))
    assert {(d.step, d.status) for d in debt} == {
        ("getting-started", "open"),
        ("agenda-setting-and-scoping", "open"),
    }
    step1 = [c.id for c in msp.step(1).gate]
    step2 = [c.id for c in msp.step(2).gate]
    assert sorted((d.step, d.criterion) for d in debt) == sorted(
        [("getting-started", c) for c in step1] + [("agenda-setting-and-scoping", c) for c in step2]
    )
    put(service, ref, 1)
    settled, still = service.backfill(SECRETARIAT, ref)
    assert sorted(settled) == sorted(f"1:{c}" for c in step1)
    assert sorted(still) == sorted(f"2:{c}" for c in step2)
    service.waive(SECRETARIAT, ref, "goal-set", "set by the founding charter", step="2")
    with read_session(engine) as s:
        statuses = {d.criterion: d.status for d in service.gate_debt(s, service.get(s, ref))}
    assert statuses["goal-set"] == "waived" and statuses["challenge-framed"] == "backfilled"
    assert [e.kind for e in events(engine)] == ["onboard", "backfill", "waive"]


def test_scale_up_replica_inherits_lessons(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text, at_step="11")
    record(service, SECRETARIAT, ref, "lesson", {"text": "Procure early"})
    with pytest.raises(InvalidInput, match="dimension"):
        service.scale_up(SECRETARIAT, ref, dimensions=["cosmic"], description="x")
    _, replica = service.scale_up(
        SECRETARIAT,
        ref,
        dimensions=["physical"],
        description="Next province",
        replica_name="Replica",
        replica_step="4",
    )
    assert replica is not None
    with read_session(engine) as s:
        child = service.get(s, replica.slug)
        assert child.state == "planning" and child.parent_id == service.get(s, ref).id
        lessons = s.exec(select(m.Lesson).where(m.Lesson.partnership_id == child.id)).all()
        assert [(x.text, x.inherited_from) for x in lessons] == [("Procure early", child.parent_id)]
    with pytest.raises(InvalidInput, match="possible steps"):
        service.scale_up(
            SECRETARIAT,
            ref,
            dimensions=["social"],
            description="x",
            replica_name="Bad",
            replica_step="7",
        )
    service.move(SECRETARIAT, ref, kind="advance")  # the decision opens step 11's gate


def test_history_chain_verifies_and_detects_an_edit(
    service: PartnershipService, msp: Workflow, msp_text: str, engine: Engine
) -> None:
    ref = new(service, msp, msp_text)
    put(service, ref, 1)
    service.move(SECRETARIAT, ref, kind="advance")
    chain = events(engine)
    assert list(history.verify(chain)) == []
    chain[1].actor = "mallory"
    assert [b.seq for b in history.verify(chain)] == [2]


def test_sdg_targets_are_the_169() -> None:
    codes = sdg_targets()
    assert len(codes) == 169 and {"6.1", "6.a", "1.b", "17.19"} <= codes and "17.a" not in codes


def test_bulk_import_is_all_or_nothing(
    service: PartnershipService, msp: Workflow, msp_text: str, tmp_path: Path, engine: Engine
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
        import_file(service, SECRETARIAT, ref, bad)
    lines = info.value.lines()
    assert any(":7:" in x and "6.99" in x for x in lines), lines
    assert any(":9:" in x and "weather" in x for x in lines), lines
    with read_session(engine) as s:
        assert s.exec(select(m.SdgTarget)).all() == []
        assert s.exec(select(m.Partner)).all() == []
    good = tmp_path / "evidence.csv"
    good.write_text("kind,code,name,sector,can_decide\nsdg,6.1,,,\npartner,,A,government,true\n")
    assert import_file(service, SECRETARIAT, ref, good) == {"sdg": 1, "partner": 1}


def test_cadence_looser_than_the_minimum_names_the_task(
    service: PartnershipService, msp: Workflow, msp_text: str
) -> None:
    ref = new(service, msp, msp_text)
    with pytest.raises(
        InvalidInput,
        match=r"quarterly coordination meeting is less frequent "
        r"than monthly not allowed by task 7\.1",
    ):
        record(
            service,
            SECRETARIAT,
            ref,
            "schedule",
            {"kind": "coordination-meeting", "cadence": "quarterly", "start": "2027-02-01"},
        )
