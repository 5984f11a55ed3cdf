"""Every gate check at the edges of its parameters, on every backend.

Each test stores evidence rows one at a time and asks the check, through
:func:`mspflow.gates.evaluate` as the engine does, after each: the answer flips
exactly where the parameter says (``min`` - 1 records fail, ``min`` pass), rows
a filter excludes (a meeting without minutes, an inactive partner, a risk
without a mitigation) never count, and the account of what was found is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import Engine

from mspflow.definition import Workflow
from mspflow.definition.checks import RISK_AREAS
from mspflow.definition.model import Criterion
from mspflow.gates import CheckResult, GateContext, evaluate
from mspflow.services import Mspflow
from mspflow.store import models as m
from mspflow.store import read_session, write_session
from mspflow.store.lookup import find

pytestmark = pytest.mark.timeout(120)

DAY = date(2027, 2, 1)


@dataclass
class Store:
    """One partnership's evidence tables, written row by row, and its gate checks."""

    engine: Engine
    service: Mspflow
    pid: int

    def add(self, model: type[Any], **values: Any) -> int:
        """Store one row of ``model`` for the partnership; its id."""
        if issubclass(model, m.Evidence) or model in (
            m.Profile, m.Scope, m.Governance, m.DecisionMaking,
        ):  # fmt: skip
            values = {
                "partnership_id": self.pid,
                "recorded_by": "ana",
                "recorded_at": self.service.clock.now(),
                **values,
            }
        with write_session(self.engine) as s:
            row = model(**values)
            s.add(row)
            s.flush()
            return int(getattr(row, "id", None) or self.pid)

    def set(self, model: type[Any], row_id: int, **values: Any) -> None:
        with write_session(self.engine) as s:
            row = s.get(model, row_id)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)

    def partner(self, name: str, **values: Any) -> int:
        return self.add(m.Partner, name=name, sector="government", **values)

    def check(
        self, name: str, *, task: str = "1.1", outcome: str | None = None, **params: Any
    ) -> tuple[bool, str]:
        result = self.result(name, task=task, outcome=outcome, **params)
        return result.ok, result.detail

    def result(
        self, name: str, *, task: str = "1.1", outcome: str | None = None, **params: Any
    ) -> CheckResult:
        criterion = Criterion("c", task, "the criterion", name, MappingProxyType(params))
        return self.evaluate(criterion, outcome)

    def judge(self, criterion: Criterion) -> tuple[bool, str]:
        result = self.evaluate(criterion)
        return result.ok, result.detail

    def evaluate(self, criterion: Criterion, outcome: str | None = None) -> CheckResult:
        with read_session(self.engine) as s:
            p = s.get(m.Partnership, self.pid)
            assert p is not None
            return evaluate(GateContext(s, p, outcome), criterion)


@pytest.fixture
def store(engine: Engine, service: Mspflow, msp: Workflow, msp_text: str) -> Iterator[Store]:
    slug = service.partnerships.create(name="Gates", workflow=msp, definition_text=msp_text).id
    with read_session(engine) as s:
        pid = find(s, slug).id
    assert pid is not None
    yield Store(engine, service, pid)


# --------------------------------------------------------------------------- records_at_least


@pytest.mark.parametrize("least", [1, 2, 3])
def test_records_at_least_flips_exactly_at_min(store: Store, least: int) -> None:
    ids: list[int] = []
    for n in range(least):
        assert store.check("records_at_least", record="lesson", min=least) == (
            False,
            f"{n} lesson recorded, {least} needed",
        )
        ids.append(store.add(m.Lesson, text=f"lesson {n}"))
    result = store.result("records_at_least", record="lesson", min=least)
    assert (result.ok, result.detail) == (True, f"{least} lesson")
    assert dict(result.evidence) == {"lesson": ids, "count": least}


def test_records_at_least_without_min_needs_one(store: Store) -> None:
    assert store.check("records_at_least", record="sdg_target") == (
        False,
        "0 sdg target recorded, 1 needed",
    )
    store.add(m.SdgTarget, code="6.1")
    assert store.check("records_at_least", record="sdg_target") == (True, "1 sdg target")


def test_meetings_without_minutes_do_not_count(store: Store) -> None:
    """The meetings-held gate: with_minutes: true counts only meetings whose minutes are kept."""
    held = {"record": "meeting", "min": 2, "where": {"with_minutes": True}}
    store.add(m.Meeting, held_on=DAY, minutes=None)
    store.add(m.Meeting, held_on=DAY, minutes="")
    store.add(m.Meeting, held_on=DAY, minutes="Agreed the work plan")
    assert store.check("records_at_least", **held) == (
        False,
        "1 meeting (with_minutes=True) recorded, 2 needed",
    )
    # Without the filter the same three meetings are enough.
    assert store.check("records_at_least", record="meeting", min=2) == (True, "3 meeting")
    late = store.add(m.Meeting, held_on=DAY, minutes=None)
    assert store.check("records_at_least", **held)[0] is False
    store.set(m.Meeting, late, minutes="Minutes filed a week later")
    assert store.check("records_at_least", **held) == (True, "2 meeting (with_minutes=True)")


def test_the_bundled_meetings_held_criterion_needs_minutes(store: Store, msp: Workflow) -> None:
    [held] = [c for c in msp.step(7).gate if c.id == "meetings-held"]
    store.add(m.Meeting, held_on=DAY, minutes=None)
    ok, detail = store.judge(held)  # counted in this pass round the loop (since: cycle)
    assert not ok and detail.startswith("0 meeting (with_minutes=True) recorded, 1 needed since")
    store.add(m.Meeting, held_on=DAY, minutes="Agreed the work plan")
    assert store.judge(held)[0] is True


def test_meetings_without_minutes_are_what_with_minutes_false_counts(store: Store) -> None:
    store.add(m.Meeting, held_on=DAY, minutes="kept")
    assert store.check("records_at_least", record="meeting", where={"with_minutes": False}) == (
        False,
        "0 meeting (with_minutes=False) recorded, 1 needed",
    )
    store.add(m.Meeting, held_on=DAY, minutes=None)
    assert store.check("records_at_least", record="meeting", where={"with_minutes": False}) == (
        True,
        "1 meeting (with_minutes=False)",
    )


def test_records_at_least_filters_by_value(store: Store) -> None:
    a = store.partner("A")
    store.add(m.Resource, partner_id=a, kind="in-kind", description="staff", committed=True)
    store.add(m.Resource, partner_id=a, kind="financial", description="grant", committed=False)
    financial = {"record": "resource", "where": {"kind": "financial", "committed": True}}
    assert store.check("records_at_least", **financial) == (
        False,
        "0 resource (kind=financial, committed=True) recorded, 1 needed",
    )
    store.add(m.Resource, partner_id=a, kind="financial", description="loan", committed=True)
    assert store.check("records_at_least", **financial) == (
        True,
        "1 resource (kind=financial, committed=True)",
    )
    store.add(m.Review, kind="progress", held_on=DAY, findings="on track")
    midterm = {"record": "review", "where": {"kind": "midterm"}}
    assert store.check("records_at_least", **midterm)[0] is False
    store.add(m.Review, kind="midterm", held_on=DAY, findings="halfway")
    assert store.check("records_at_least", **midterm) == (True, "1 review (kind=midterm)")


def test_partners_counted_are_the_active_ones(store: Store) -> None:
    decides = {"record": "partner", "min": 2, "where": {"can_decide": True}}
    store.partner("A", can_decide=True)
    store.partner("B", can_decide=False)
    gone = store.partner("C", can_decide=True, active=False)
    assert store.check("records_at_least", **decides) == (
        False,
        "1 partner (can_decide=True) recorded, 2 needed",
    )
    store.set(m.Partner, gone, active=True)
    assert store.check("records_at_least", **decides) == (True, "2 partner (can_decide=True)")


def test_another_partnership_s_evidence_never_counts(
    store: Store, service: Mspflow, msp: Workflow, msp_text: str
) -> None:
    """A second partnership with every kind of evidence: the first one's checks see none of it."""
    slug = service.partnerships.create(name="Other", workflow=msp, definition_text=msp_text).id
    with read_session(store.engine) as s:
        other_id = find(s, slug).id
    assert other_id is not None
    other = Store(store.engine, store.service, other_id)
    mine = store.partner("Mine")  # the first partnership has a partner and nothing else
    theirs = other.partner("Theirs")
    other.add(m.Lesson, text="theirs")
    other.add(m.Meeting, held_on=DAY, minutes="theirs")
    other.add(m.Signature, partner_id=theirs, signed_on=DAY)
    # Their rows name our partner: still theirs.
    other.add(m.Resource, partner_id=mine, kind="in-kind", description="x", committed=True)
    objective = other.add(m.Objective, text="theirs")
    component = other.add(m.Component, name="theirs")
    other.add(m.ComponentObjective, component_id=component, objective_id=objective)
    other.add(m.ComponentLead, component_id=component, partner_id=mine)
    other.add(m.PanelMember, partner_id=mine, name="theirs")
    lead = other.add(m.OverallLead, partner_id=mine)
    other.add(m.LeadershipAgreement, lead_id=lead, partner_id=mine)
    other.add(m.Risk, area="reputation", description="d", mitigation="m")
    other.add(m.Schedule, kind="coordination-meeting", cadence="monthly", starts_on=DAY)
    other.add(m.ScaleUpDecision, dimensions="physical", description="theirs")
    other.add(m.Governance, procedures="theirs", process_baseline="theirs")
    other.add(m.Attestation, task="7.3", note="theirs")
    assert store.check("records_at_least", record="lesson")[0] is False
    assert (
        store.check("records_at_least", record="meeting", where={"with_minutes": True})[0] is False
    )
    assert store.check("records_at_least", record="partner", min=2)[0] is False
    assert store.check("each_partner_has", record="signature") == (False, "no signature for Mine")
    assert store.check("each_partner_has", record="resource") == (False, "no resource for Mine")
    assert store.check("objectives_covered") == (False, "no objectives recorded")
    assert store.check("components_led") == (False, "no components recorded")
    assert store.check("panel_represents_partners") == (False, "no panel member for Mine")
    assert store.check("lead_agreed") == (False, "no overall lead named")
    assert store.check("risk_areas_covered", areas=["reputation"])[0] is False
    assert store.check("schedules_defined", kinds=["coordination-meeting"])[0] is False
    assert store.check("scale_up_decided", dimensions=["physical"])[0] is False
    assert store.check("fields_recorded", record="governance", fields=["procedures"])[0] is False
    assert store.check("attested", task="7.3")[0] is False
    assert store.check("resources_mobilized")[0] is False
    # The other partnership's own checks see its evidence.
    assert other.check("objectives_covered") == (True, "1 objectives covered")
    assert other.check("components_led") == (True, "1 components led")
    # Links made by the other partnership do not serve or lead ours.
    ours = store.add(m.Objective, text="ours")
    component_of_ours = store.add(m.Component, name="ours")
    other.add(m.ComponentObjective, component_id=component, objective_id=ours)
    other.add(m.ComponentLead, component_id=component_of_ours, partner_id=theirs)
    assert store.check("objectives_covered") == (
        False,
        f"objectives without a component: #{ours} ours",
    )
    assert store.check("components_led") == (False, "components without a lead: ours")


# --------------------------------------------------------------------------- per partner


def test_each_partner_has_ignores_inactive_partners(store: Store) -> None:
    assert store.check("each_partner_has", record="signature") == (False, "no active partners")
    a = store.partner("Ministry")
    b = store.partner("Utility")
    gone = store.partner("Withdrawn", active=False)
    sig_a = store.add(m.Signature, partner_id=a, signed_on=DAY)
    assert store.check("each_partner_has", record="signature") == (
        False,
        "no signature for Utility",
    )
    sig_b = store.add(m.Signature, partner_id=b, signed_on=DAY)
    result = store.result("each_partner_has", record="signature")
    assert (result.ok, result.detail) == (True, "signature for all 2 partners")
    assert dict(result.evidence) == {"signature": {"Ministry": [sig_a], "Utility": [sig_b]}}
    store.set(m.Partner, gone, active=True)  # back again, and still to sign
    assert store.check("each_partner_has", record="signature") == (
        False,
        "no signature for Withdrawn",
    )


def test_each_partner_has_applies_where(store: Store) -> None:
    a = store.partner("A")
    b = store.partner("B")
    committed = {"record": "resource", "where": {"committed": True}}
    store.add(m.Resource, partner_id=a, kind="in-kind", description="x", committed=True)
    store.add(m.Resource, partner_id=b, kind="in-kind", description="y", committed=False)
    assert store.check("each_partner_has", **committed) == (False, "no resource for B")
    store.add(m.Resource, partner_id=b, kind="financial", description="z", committed=True)
    assert store.check("each_partner_has", **committed) == (True, "resource for all 2 partners")


def test_each_partner_fields(store: Store) -> None:
    needs = {"fields": ["contact_name", "objectives"]}
    assert store.check("each_partner_fields", **needs) == (False, "no active partners")
    a = store.partner("A", contact_name="Dara", objectives="water")
    b = store.partner("B", contact_name="", objectives="sanitation")
    store.partner("C", active=False)  # lacks both, but has left
    assert store.check("each_partner_fields", **needs) == (
        False,
        "contact_name, objectives missing for B",
    )
    store.set(m.Partner, b, contact_name="Sophea")
    result = store.result("each_partner_fields", **needs)
    assert (result.ok, result.detail) == (True, "recorded for all 2 partners")
    assert dict(result.evidence) == {"partners": [a, b], "fields": needs["fields"]}


def test_panel_represents_partners(store: Store) -> None:
    assert store.check("panel_represents_partners") == (False, "no active partners")
    a = store.partner("A")
    b = store.partner("B")
    store.partner("C", active=False)
    store.add(m.PanelMember, partner_id=a, name="Dara")
    assert store.check("panel_represents_partners") == (False, "no panel member for B")
    store.add(m.PanelMember, partner_id=b, name="Sophea")
    assert store.check("panel_represents_partners") == (True, "panel covers all 2 partners")


def test_lead_agreed_by_every_active_partner_for_the_newest_lead(store: Store) -> None:
    assert store.check("lead_agreed") == (False, "no overall lead named")
    a = store.partner("A")
    b = store.partner("B")
    store.partner("C", active=False)
    first = store.add(m.OverallLead, partner_id=a)
    store.add(m.LeadershipAgreement, lead_id=first, partner_id=a)
    assert store.check("lead_agreed") == (False, "not yet agreed by B")
    store.add(m.LeadershipAgreement, lead_id=first, partner_id=b)
    assert store.check("lead_agreed") == (True, "agreed by all partners")
    second = store.add(m.OverallLead, partner_id=b)  # a new lead: agreements start over
    store.add(m.LeadershipAgreement, lead_id=second, partner_id=b)
    assert store.check("lead_agreed") == (False, "not yet agreed by A")
    store.add(m.LeadershipAgreement, lead_id=second, partner_id=a)
    assert store.result("lead_agreed").evidence == {"overall_lead": second}


# --------------------------------------------------------------------------- single records


def test_fields_recorded(store: Store) -> None:
    needs = {"record": "governance", "fields": ["procedures", "process_baseline"]}
    assert store.check("fields_recorded", **needs) == (
        False,
        "governance lacks procedures, process_baseline",
    )
    store.add(m.Governance, procedures="Steering committee", process_baseline="")
    assert store.check("fields_recorded", **needs) == (False, "governance lacks process_baseline")
    store.set(m.Governance, store.pid, process_baseline="Trust 3.1 of 5")
    assert store.check("fields_recorded", **needs) == (True, "recorded")
    # Only the fields named are asked for.
    assert store.check("fields_recorded", record="scope", fields=["outputs"]) == (
        False,
        "scope lacks outputs",
    )


# --------------------------------------------------------------------------- risk areas


def test_risk_areas_all_five_versus_four(store: Store) -> None:
    five = {"areas": list(RISK_AREAS)}
    assert len(RISK_AREAS) == 5
    for area in RISK_AREAS[:4]:
        store.add(m.Risk, area=area, description="d", mitigation="m")
    assert store.check("risk_areas_covered", **five) == (
        False,
        "no mitigated risk in: implementation",
    )
    assert store.check("risk_areas_covered", areas=list(RISK_AREAS[:4])) == (
        True,
        "all 4 areas assessed",
    )
    # A risk in the fifth area counts only once it has a mitigation.
    store.add(m.Risk, area="implementation", description="delays", mitigation=None)
    assert store.check("risk_areas_covered", **five)[0] is False
    late = store.add(m.Risk, area="implementation", description="delays", mitigation="")
    assert store.check("risk_areas_covered", **five)[0] is False
    store.set(m.Risk, late, mitigation="buffer in the plan")
    result = store.result("risk_areas_covered", **five)
    assert (result.ok, result.detail) == (True, "all 5 areas assessed")
    assert sorted(result.evidence["risk"]) == sorted(RISK_AREAS)
    assert result.evidence["risk"]["implementation"] == late


# --------------------------------------------------------------------------- planning


def test_objectives_covered(store: Store) -> None:
    assert store.check("objectives_covered") == (False, "no objectives recorded")
    o1 = store.add(m.Objective, text="Safe water")
    o2 = store.add(m.Objective, text="Sanitation")
    c = store.add(m.Component, name="Water points")
    store.add(m.ComponentObjective, component_id=c, objective_id=o1)
    assert store.check("objectives_covered") == (
        False,
        f"objectives without a component: #{o2} Sanitation",
    )
    store.add(m.ComponentObjective, component_id=c, objective_id=o2)
    assert store.check("objectives_covered") == (True, "2 objectives covered")


def test_activities_assigned(store: Store) -> None:
    assert store.check("activities_assigned") == (False, "no activities recorded")
    a = store.partner("A")
    c = store.add(m.Component, name="Water points")
    store.add(
        m.Activity, component_id=c, name="Drill", responsible_partner_id=a, start=DAY, end=DAY
    )
    open_ended = store.add(
        m.Activity, component_id=c, name="Train", responsible_partner_id=a, start=DAY
    )
    assert store.check("activities_assigned") == (
        False,
        "activities without start and end: Train",
    )
    store.set(m.Activity, open_ended, end=date(2027, 6, 30))
    assert store.check("activities_assigned") == (True, "2 activities assigned")


def test_components_led(store: Store) -> None:
    assert store.check("components_led") == (False, "no components recorded")
    a = store.partner("A")
    c1 = store.add(m.Component, name="Water points")
    c2 = store.add(m.Component, name="Hygiene")
    store.add(m.ComponentLead, component_id=c1, partner_id=a)
    assert store.check("components_led") == (False, "components without a lead: Hygiene")
    store.add(m.ComponentLead, component_id=c2, partner_id=a, joint=True)
    assert store.check("components_led") == (True, "2 components led")


def test_resources_mobilized(store: Store) -> None:
    assert store.check("resources_mobilized") == (False, "no committed resources recorded")
    a = store.partner("A")
    store.add(m.Resource, partner_id=a, kind="in-kind", description="maybe", committed=False)
    assert store.check("resources_mobilized")[0] is False  # uncommitted ones do not count
    grant = store.add(
        m.Resource, partner_id=a, kind="financial", description="grant", committed=True
    )
    assert store.check("resources_mobilized") == (
        False,
        f"committed but not mobilized: #{grant} grant",
    )
    store.set(m.Resource, grant, mobilized=True)
    assert store.check("resources_mobilized") == (True, "1 committed resources mobilized")


def test_schedules_defined(store: Store) -> None:
    kinds = {"kinds": ["coordination-meeting", "progress-monitoring"]}
    store.add(m.Schedule, kind="coordination-meeting", cadence="monthly", starts_on=DAY)
    assert store.check("schedules_defined", **kinds) == (
        False,
        "no active schedule: progress-monitoring",
    )
    stopped = store.add(
        m.Schedule, kind="progress-monitoring", cadence="quarterly", starts_on=DAY, active=False
    )
    assert store.check("schedules_defined", **kinds)[0] is False
    store.set(m.Schedule, stopped, active=True)
    assert store.check("schedules_defined", **kinds) == (True, "scheduled")


# --------------------------------------------------------------------------- later steps


def test_scale_up_decided_needs_a_named_dimension(store: Store) -> None:
    physical = {"dimensions": ["physical"]}
    assert store.check("scale_up_decided", **physical) == (
        False,
        "no decision on scaling up, for it along a dimension or against it",
    )
    store.add(m.ScaleUpDecision, dimensions="social", description="more villages")
    assert store.check("scale_up_decided", **physical)[0] is False
    store.add(m.ScaleUpDecision, dimensions="social,physical", description="next province")
    assert store.check("scale_up_decided", **physical) == (True, "decided: physical")
    assert store.check("scale_up_decided", dimensions=["physical", "social"]) == (
        True,
        "decided: social, physical",
    )


def test_outcome_recorded_is_the_outcome_being_chosen(store: Store) -> None:
    assert store.check("outcome_recorded")[0] is False
    assert store.check("outcome_recorded", outcome="") == (
        False,
        "no outcome chosen (give one with 'conclude --outcome')",
    )
    result = store.result("outcome_recorded", outcome="transfer-to-institution")
    assert (result.ok, result.detail) == (True, "transfer-to-institution")
    assert result.evidence == {"outcome": "transfer-to-institution"}


def test_attested_is_for_the_criterion_s_own_task(store: Store) -> None:
    assert store.check("attested", task="7.3") == (False, "task 7.3 not attested")
    store.add(m.Attestation, task="7.2", note="done")
    assert store.check("attested", task="7.3") == (False, "task 7.3 not attested")
    store.add(m.Attestation, task="7.3", note="done", recorded_by="bo")
    assert store.check("attested", task="7.3") == (True, "attested by bo")
