"""Cadences are floors: every schedule kind x every cadence.

A cadence is accepted exactly when it is at least as frequent as the kind's
minimum (where the definition sets one); one the definition does not suggest
is kept with a note; a one-off only where the kind offers it.
"""

from __future__ import annotations

import pytest

from mspflow.definition import find_workflow
from mspflow.definition.model import CADENCE_DAYS
from mspflow.errors import InvalidInput
from mspflow.services import Mspflow

WF = find_workflow("msp-12-step")
PAIRS = [(k.id, c) for k in WF.schedule_kinds for c in CADENCE_DAYS]


def _accepted(kind_id: str, cadence: str) -> bool:
    kind = WF.schedule_kind(kind_id)
    assert kind is not None
    if kind.derived is not None or cadence == "once":
        return cadence in kind.cadences
    return kind.minimum is None or CADENCE_DAYS[cadence] <= CADENCE_DAYS[kind.minimum]


@pytest.fixture
def water(service: Mspflow) -> str:
    slug = service.partnerships.create(name="Safe water", slug="water").id
    service.evidence.record(
        partnership=slug, kind="scope", values={"start": "2027-01-01", "end": "2029-01-01"}
    )
    return slug


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the rule is the service's
@pytest.mark.parametrize(("kind_id", "cadence"), PAIRS, ids=[f"{k}-{c}" for k, c in PAIRS])
def test_a_cadence_is_accepted_exactly_when_at_least_as_frequent_as_the_minimum(
    service: Mspflow, water: str, kind_id: str, cadence: str
) -> None:
    kind = WF.schedule_kind(kind_id)
    assert kind is not None
    values = {"kind": kind_id, "cadence": cadence, "start": "2027-03-01"}
    if _accepted(kind_id, cadence):
        done = service.evidence.record(partnership=water, kind="schedule", values=values)
        suggested = cadence in kind.cadences
        assert bool(done.notes) == (not suggested), done.notes
        if not suggested:
            assert "the workflow suggests" in done.notes[0] and f"task {kind.task}" in done.notes[0]
    else:
        with pytest.raises(InvalidInput) as info:
            service.evidence.record(partnership=water, kind="schedule", values=values)
        assert info.value.field == "cadence"
        if kind.minimum and cadence != "once" and kind.derived is None:
            assert f"less frequent than {kind.minimum}, the minimum of task {kind.task}" in str(
                info.value
            )


def test_an_unknown_cadence_is_refused(service: Mspflow, water: str) -> None:
    with pytest.raises(InvalidInput, match="'fortnightly' is not a cadence"):
        service.evidence.record(
            partnership=water,
            kind="schedule",
            values={"kind": "monitoring", "cadence": "fortnightly", "start": "2027-03-01"},
        )
