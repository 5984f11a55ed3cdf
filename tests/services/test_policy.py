"""Access per partnership: the matrix role x operation x member / non-member.

Each cell says whether the access policy lets the operation through
("allowed": it runs, or is refused for another reason, such as an unmet gate)
or refuses it ("refused": NotPermitted). Lists and portfolio views are
filtered by the same policy: a partnership one may not read is not listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from mspflow.auth import Actor
from mspflow.clock import ManualClock
from mspflow.errors import InvalidInput, MspflowError, NotPermitted
from mspflow.services import Mspflow
from mspflow.services.context import Context
from mspflow.services.policy import partner_kinds, secretariat_scope
from tests.conftest import SECRETARIAT

Op = Callable[[Mspflow, str], Any]

#: The operations, each on partnership P.
OPS: dict[str, Op] = {
    "show": lambda app, p: app.partnerships.show(partnership=p),
    "history": lambda app, p: app.partnerships.history(partnership=p),
    "gate debt": lambda app, p: app.partnerships.gate_debt(partnership=p),
    "partners": lambda app, p: app.partnerships.partners(partnership=p),
    "schedule list": lambda app, p: app.schedules.list(partnership=p),
    "schedule status": lambda app, p: app.schedules.status(partnership=p),
    "fired": lambda app, p: app.schedules.fired(partnership=p),
    "calendar": lambda app, p: app.schedules.calendar(partnership=p),
    "members": lambda app, p: app.members.list(partnership=p),
    "record meeting": lambda app, p: app.evidence.record(
        partnership=p, kind="meeting", values={"on": "2027-01-04", "minutes": "Held"}
    ),
    "record monitoring": lambda app, p: app.evidence.record(
        partnership=p, kind="monitoring", values={"kind": "progress", "summary": "On plan"}
    ),
    "record profile": lambda app, p: app.evidence.record(
        partnership=p, kind="profile", values={"challenge": "Unsafe water"}
    ),
    "add schedule": lambda app, p: app.schedules.add(
        partnership=p, kind="monitoring", cadence="monthly", start="2027-02-01"
    ),
    "advance": lambda app, p: app.partnerships.advance(partnership=p),
    "waive": lambda app, p: app.partnerships.waive(
        partnership=p, criterion="challenge-framed", reason="set by the charter"
    ),
    "update partner": lambda app, p: app.evidence.update_partner(
        partnership=p, partner="Village Water Network", values={"contact": "Sok Lina"}
    ),
    "add member": lambda app, p: app.members.add(partnership=p, user="zoe"),
    "audit log": lambda app, p: list(app.audit.log(partnerships=[p])),
    "audit export": lambda app, p: app.audit.export(format="jsonl", out=_Sink(), partnerships=[p]),
}

READS = {
    "show", "history", "gate debt", "partners", "schedule list", "schedule status", "fired",
    "calendar", "members",
}  # fmt: skip
PARTNER_RECORDS = {"record meeting", "record monitoring"}
CHANGES = set(OPS) - READS - PARTNER_RECORDS - {"audit log", "audit export"}
AUDITS = {"audit log", "audit export"}

#: role -> (member, non-member) -> the operations allowed; every other one is refused.
ALLOWED: dict[str, dict[bool, set[str]]] = {
    "secretariat": {True: set(OPS), False: set(OPS)},
    "assigned secretariat": {True: set(OPS), False: set()},
    "partner": {True: READS | PARTNER_RECORDS, False: set()},
    "auditor": {True: READS | AUDITS, False: READS | AUDITS},
}
WHO = {
    "secretariat": ("ana", "all"),
    "assigned secretariat": ("sam", "assigned"),
    "partner": ("pia", "all"),
    "auditor": ("ivo", "all"),
}


class _Sink:
    def write(self, text: str) -> int:
        return len(text)


@pytest.fixture
def portfolio(engine: Engine, clock: ManualClock) -> Iterator[Engine]:
    """Two partnerships: 'ours', of which sam (secretariat) and pia (the contact of its
    partner organisation) are members, and 'theirs', of which nobody is."""
    app = Mspflow(engine=engine, clock=clock, actor=SECRETARIAT)
    app.users.add(name="sam", role="secretariat")
    app.users.add(name="zoe", role="secretariat")
    for slug in ("ours", "theirs"):
        app.partnerships.create(name=slug.title(), slug=slug)
        app.evidence.record(
            partnership=slug,
            kind="partner",
            values={"name": "Village Water Network", "sector": "civil-society"},
        )
        app.schedules.add(
            partnership=slug, kind="monitoring", cadence="monthly", start="2027-03-01"
        )
    app.members.add(partnership="ours", user="sam")
    app.members.add(partnership="ours", user="pia", partner="Village Water Network")
    yield engine


def outcome(app: Mspflow, op: str, p: str) -> str:
    try:
        OPS[op](app, p)
    except NotPermitted:
        return "refused"
    except MspflowError as exc:
        assert op not in READS, (op, exc)  # a read the policy allows must work
        return "allowed"  # refused for another reason (an unmet gate, a duplicate ...)
    return "allowed"


def as_(engine: Engine, clock: ManualClock, role: str) -> Mspflow:
    name, scope = WHO[role]
    return Mspflow(context=Context(engine=engine, clock=clock, actor=name, secretariat_scope=scope))


@pytest.mark.parametrize("role", list(ALLOWED))
@pytest.mark.parametrize("member", [True, False], ids=["member", "non-member"])
def test_the_access_matrix(portfolio: Engine, clock: ManualClock, role: str, member: bool) -> None:
    app = as_(portfolio, clock, role)
    p = "ours" if member else "theirs"
    found = {op: outcome(app, op, p) for op in OPS}
    expected = {op: "allowed" if op in ALLOWED[role][member] else "refused" for op in OPS}
    assert found == expected


@pytest.mark.parametrize("role", list(ALLOWED))
def test_lists_and_portfolio_views_show_what_may_be_read(
    portfolio: Engine, clock: ManualClock, role: str
) -> None:
    app = as_(portfolio, clock, role)
    readable = ["ours", "theirs"] if ALLOWED[role][False] & READS else ["ours"]
    assert [p.id for p in app.partnerships.list()] == readable
    by_state = app.schedules.status().portfolio
    assert by_state is not None and sum(by_state["by_state"].values()) == len(readable)
    calendar = app.schedules.calendar().to_ical().decode()
    for slug in ("ours", "theirs"):
        assert (f"{slug}.schedule-" in calendar) == (slug in readable), slug
    if role in ("auditor", "secretariat", "assigned secretariat"):
        logged = {e.partnership for e in app.audit.log()}
        assert logged == set(readable)


def test_a_scoped_secretariat_is_assigned_to_what_it_creates(
    portfolio: Engine, clock: ManualClock
) -> None:
    sam = as_(portfolio, clock, "assigned secretariat")
    made = sam.partnerships.create(name="New one", slug="new")
    assert [m.user for m in sam.members.list(partnership=made.id)] == ["sam"]
    assert [p.id for p in sam.partnerships.list()] == ["ours", "new"]


def test_a_partner_records_only_the_kinds_partners_supply() -> None:
    assert set(partner_kinds()) == {
        "meeting", "monitoring", "report", "milestone", "indicator-value",
    }  # fmt: skip


def test_membership_changes_are_in_the_history(portfolio: Engine, clock: ManualClock) -> None:
    app = Mspflow(engine=portfolio, clock=clock, actor=SECRETARIAT)
    app.members.remove(partnership="ours", user="pia")
    kinds = [e.kind for e in app.partnerships.history(partnership="ours").events]
    assert kinds.count("member-add") == 2 and kinds[-1] == "member-remove"
    assert outcome(as_(portfolio, clock, "partner"), "show", "ours") == "refused"


def test_members_are_checked(portfolio: Engine, clock: ManualClock) -> None:
    app = Mspflow(engine=portfolio, clock=clock, actor=SECRETARIAT)
    with pytest.raises(InvalidInput, match="auditor"):
        app.members.add(partnership="ours", user="ivo")
    with pytest.raises(InvalidInput, match="name the partner organisation"):
        app.members.add(partnership="theirs", user="pia")
    with pytest.raises(InvalidInput, match="already"):
        app.members.add(partnership="ours", user="sam")


def test_the_scope_setting_is_read_and_checked(tmp_path: Any) -> None:
    assert secretariat_scope({"MSPFLOW_CONFIG": str(tmp_path / "none.toml")}) == "all"
    assert secretariat_scope({"MSPFLOW_SECRETARIAT_SCOPE": "assigned"}) == "assigned"
    config = tmp_path / "config.toml"
    config.write_text('[access]\nsecretariat_scope = "assigned"\n')
    assert secretariat_scope({"MSPFLOW_CONFIG": str(config)}) == "assigned"
    with pytest.raises(InvalidInput, match="secretariat scope"):
        secretariat_scope({"MSPFLOW_SECRETARIAT_SCOPE": "some"})


def test_the_scheduler_reaches_every_partnership(portfolio: Engine, clock: ManualClock) -> None:
    from mspflow.auth import SCHEDULER

    app = Mspflow(engine=portfolio, clock=clock, actor=SCHEDULER)
    assert outcome(app, "show", "theirs") == "allowed"
    assert isinstance(SCHEDULER, Actor)


def test_the_outbox_is_delivered_on_its_own_by_the_secretariat(
    portfolio: Engine, clock: ManualClock
) -> None:
    from datetime import datetime, timezone

    said: list[str] = []
    app = Mspflow(engine=portfolio, clock=clock, actor=SECRETARIAT)
    clock.set(datetime(2027, 2, 22, 9, tzinfo=timezone.utc))  # 7 days before 2027-03-01
    fired = app.scheduler.sweeper(action="sweep", say=said.append).fire()
    assert fired.fired["reminder notified"] == 2 and said == []  # claimed, not yet sent
    report = app.scheduler.deliver(say=said.append)
    assert report.sent == 2 and len(said) == 2 and not report.fired
    assert app.scheduler.deliver(say=said.append).sent == 0  # each once
    with pytest.raises(NotPermitted):
        as_(portfolio, clock, "auditor").scheduler.deliver()
