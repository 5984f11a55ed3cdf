"""Evaluators for the built-in gate checks named in workflow definitions.

One function per name in :data:`mspflow.definition.checks.CHECKS`, with the
same parameter names (tests/definition/test_checks.py keeps them in step).
Each reads the evidence tables of one partnership and returns a
:class:`CheckResult`: whether the criterion holds, a short account of what was
found (shown when it does not), and a summary of the evidence that satisfied
it (kept in the history event when the gate is passed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from sqlalchemy import String
from sqlmodel import Session, col, or_, select

from mspflow.definition.kinds import DERIVED_FILTERS, by_gate_name
from mspflow.definition.model import Criterion
from mspflow.machine import CheckResult
from mspflow.store import models as m

__all__ = ["EVALUATORS", "MANY_TABLES", "SINGLE_TABLES", "CheckResult", "GateContext", "evaluate"]


@dataclass
class GateContext:
    """What an evaluator may look at."""

    session: Session
    partnership: m.Partnership
    #: Outcome chosen in the transition being attempted (step 12, task 12.1).
    pending_outcome: str | None = None
    #: The clock's now, from which ``within`` counts back.
    now: datetime | None = None
    #: The definition's ``cycle_start`` step (``since: cycle``), and the steps from
    #: which moving into it continues the pass rather than starting a new one.
    cycle_start: str | None = None
    within_pass: tuple[str, ...] = ()
    #: Gate debt of a step never visited: ``since`` has no visit to count from.
    backfill: bool = False
    #: For the criterion being judged: records must be made at or after this, and
    #: how to say so ("this visit of step 7").
    after: datetime | None = None
    needed: str = ""
    _starts: dict[str, datetime | None] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.partnership.id is not None
        return self.partnership.id

    def _entered(self, key: str, query: Any) -> datetime | None:
        if key not in self._starts:
            at = self.session.execute(query).scalar()
            self._starts[key] = _instant(at) if at else None
        return self._starts[key]

    def visit_start(self) -> datetime | None:
        """When the partnership entered the current visit of its step."""
        e = m.HistoryEvent
        return self._entered("visit", select(e.at).where(e.seq == self.partnership.entered_seq))

    def cycle_started(self) -> datetime | None:
        """When the partnership last entered the loop's first step (or began, if never),
        other than from a step of the same pass (back to delivery from monitoring)."""
        e = m.HistoryEvent
        entered = (
            select(e.at)
            .where(
                e.partnership == self.partnership.slug,
                e.to_state == self.cycle_start,
                col(e.from_state).is_distinct_from(e.to_state),
                or_(col(e.from_state).is_(None), col(e.from_state).not_in(self.within_pass)),
            )
            .order_by(col(e.seq).desc())
            .limit(1)
        )
        found = self._entered("cycle", entered)
        if found is None:
            first = select(e.at).where(e.partnership == self.partnership.slug).order_by(col(e.seq))
            found = self._entered("first", first.limit(1))
        return found

    def active_partners(self) -> list[m.Partner]:
        return list(
            self.session.exec(
                select(m.Partner)
                .where(m.Partner.partnership_id == self.pid, col(m.Partner.active).is_(True))
                .order_by(col(m.Partner.id))
            )
        )


def _tables(single: bool) -> Mapping[str, type[Any]]:
    return MappingProxyType(
        {name: m.evidence_table(k.kind) for name, k in by_gate_name().items() if k.single == single}
    )


#: The tables gate checks read, by the name definitions give them (from the kinds).
SINGLE_TABLES = _tables(single=True)
MANY_TABLES = _tables(single=False)


def _filters(model: type[Any], where: Mapping[str, Any]) -> list[Any]:
    out = []
    for name, value in where.items():
        if name in DERIVED_FILTERS:  # with_minutes: a meeting counts when its minutes are kept
            attr, filled = DERIVED_FILTERS[name]
            column: Any = getattr(model, attr)
            present: Any = column.is_not(None)
            if isinstance(getattr(column.type, "impl", column.type), String):  # a blank text
                present = present & (column != "")  # is no value either
            out.append(present if bool(value) == filled else ~present)
        else:
            out.append(getattr(model, name) == value)
    return out


def _names(partners: list[m.Partner]) -> str:
    return ", ".join(p.name for p in partners)


def fields_recorded(ctx: GateContext, record: str, fields: list[str]) -> CheckResult:
    row = ctx.session.get(SINGLE_TABLES[record], ctx.pid)
    missing = [f for f in fields if row is None or getattr(row, f) in (None, "")]
    if missing:
        return CheckResult(False, f"{record} lacks {', '.join(missing)}")
    if ctx.after is not None and row is not None and _instant(row.recorded_at) < ctx.after:
        return CheckResult(
            False,
            f"{record} last updated {_when(row.recorded_at)}; an update since "
            f"{_when(ctx.after)} ({ctx.needed}) is needed",
        )
    return CheckResult(True, "recorded", {"record": record, "fields": fields, **_since(ctx)})


def records_at_least(
    ctx: GateContext, record: str, min: int = 1, where: Mapping[str, Any] | None = None
) -> CheckResult:
    model = MANY_TABLES[record]
    query = select(model.id).where(model.partnership_id == ctx.pid)
    for clause in _filters(model, where or {}):
        query = query.where(clause)
    if record == "partner":
        query = query.where(col(m.Partner.active).is_(True))
    what = record.replace("_", " ") + (f" ({_describe(where)})" if where else "")
    if ctx.after is not None:
        fresh = list(ctx.session.exec(_fresh(query, model, ctx).order_by(model.id)))
        if len(fresh) < min:
            return CheckResult(False, _stale(ctx, query, model, len(fresh), min, what))
        return CheckResult(
            True,
            f"{len(fresh)} {what} since {_when(ctx.after)}",
            {record: fresh[-20:], "count": len(fresh), **_since(ctx)},
        )
    ids = list(ctx.session.exec(query.order_by(model.id)))
    if len(ids) < min:
        return CheckResult(False, f"{len(ids)} {what} recorded, {min} needed")
    return CheckResult(True, f"{len(ids)} {what}", {record: ids[-20:], "count": len(ids)})


def _fresh(query: Any, model: Any, ctx: GateContext) -> Any:
    return query.where(col(model.recorded_at) >= ctx.after)


def _stale(ctx: GateContext, query: Any, model: Any, fresh: int, min: int, what: str) -> str:
    """What was found when too few records are recent enough: how many, the last one,
    and since when they are needed."""
    older = [
        (rid, at)
        for rid, at in ctx.session.execute(
            query.with_only_columns(model.id, model.recorded_at).order_by(model.id)
        )
    ]
    since = f"since {_when(ctx.after)} ({ctx.needed})"
    if not older:
        return f"0 {what} recorded, {min} needed {since}"
    last = max(_instant(at) for _rid, at in older)
    return (
        f"{fresh} of {min} {what} recorded {since}; {len(older)} recorded in all, "
        f"the last on {_when(last)}"
    )


def _describe(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in where.items())


def each_partner_has(
    ctx: GateContext, record: str, where: Mapping[str, Any] | None = None
) -> CheckResult:
    partners = ctx.active_partners()
    if not partners:
        return CheckResult(False, "no active partners")
    model = MANY_TABLES[record]
    query = select(model.partner_id, model.id).where(model.partnership_id == ctx.pid)
    for clause in _filters(model, where or {}):
        query = query.where(clause)
    if ctx.after is not None:
        query = _fresh(query, model, ctx)
    found: dict[int, list[int]] = {}
    for partner_id, row_id in ctx.session.exec(query):
        found.setdefault(partner_id, []).append(row_id)
    lacking = [p for p in partners if p.id not in found]
    if lacking:
        since = f" since {_when(ctx.after)} ({ctx.needed})" if ctx.after is not None else ""
        return CheckResult(False, f"no {record}{since} for {_names(lacking)}")
    return CheckResult(
        True,
        f"{record} for all {len(partners)} partners",
        {record: {p.name: found[p.id] for p in partners if p.id is not None}, **_since(ctx)},
    )


def each_partner_fields(ctx: GateContext, fields: list[str]) -> CheckResult:
    partners = ctx.active_partners()
    if not partners:
        return CheckResult(False, "no active partners")
    lacking = [p for p in partners if any(getattr(p, f) in (None, "") for f in fields)]
    if lacking:
        return CheckResult(False, f"{', '.join(fields)} missing for {_names(lacking)}")
    return CheckResult(
        True,
        f"recorded for all {len(partners)} partners",
        {"partners": [p.id for p in partners], "fields": fields},
    )


def risk_areas_covered(ctx: GateContext, areas: list[str]) -> CheckResult:
    rows = ctx.session.exec(
        select(m.Risk).where(m.Risk.partnership_id == ctx.pid, col(m.Risk.mitigation).is_not(None))
    ).all()
    covered = {r.area: r.id for r in rows if r.mitigation}
    missing = [a for a in areas if a not in covered]
    if missing:
        return CheckResult(False, f"no mitigated risk in: {', '.join(missing)}")
    return CheckResult(True, f"all {len(areas)} areas assessed", {"risk": covered})


def objectives_covered(ctx: GateContext) -> CheckResult:
    objectives = ctx.session.exec(
        select(m.Objective).where(m.Objective.partnership_id == ctx.pid)
    ).all()
    if not objectives:
        return CheckResult(False, "no objectives recorded")
    served = set(
        ctx.session.exec(
            select(m.ComponentObjective.objective_id)
            .join(m.Component, col(m.Component.id) == m.ComponentObjective.component_id)
            .where(m.Component.partnership_id == ctx.pid)
        )
    )
    gaps = [o for o in objectives if o.id not in served]
    if gaps:
        return CheckResult(
            False,
            "objectives without a component: " + ", ".join(f"#{o.id} {o.text[:40]}" for o in gaps),
        )
    return CheckResult(
        True, f"{len(objectives)} objectives covered", {"objectives": sorted(served)}
    )


def activities_assigned(ctx: GateContext) -> CheckResult:
    rows = ctx.session.exec(select(m.Activity).where(m.Activity.partnership_id == ctx.pid)).all()
    if not rows:
        return CheckResult(False, "no activities recorded")
    undated = [a for a in rows if a.start is None or a.end is None]
    if undated:
        return CheckResult(
            False, "activities without start and end: " + ", ".join(a.name for a in undated)
        )
    return CheckResult(True, f"{len(rows)} activities assigned", {"activity": [a.id for a in rows]})


def components_led(ctx: GateContext) -> CheckResult:
    components = ctx.session.exec(
        select(m.Component).where(m.Component.partnership_id == ctx.pid)
    ).all()
    if not components:
        return CheckResult(False, "no components recorded")
    led = set(
        ctx.session.exec(
            select(m.ComponentLead.component_id).where(m.ComponentLead.partnership_id == ctx.pid)
        )
    )
    unled = [c for c in components if c.id not in led]
    if unled:
        return CheckResult(False, "components without a lead: " + ", ".join(c.name for c in unled))
    return CheckResult(True, f"{len(components)} components led", {"component": sorted(led)})


def lead_agreed(ctx: GateContext) -> CheckResult:
    lead = ctx.session.exec(
        select(m.OverallLead)
        .where(m.OverallLead.partnership_id == ctx.pid)
        .order_by(col(m.OverallLead.id).desc())
    ).first()
    if lead is None:
        return CheckResult(False, "no overall lead named")
    agreed = set(
        ctx.session.exec(
            select(m.LeadershipAgreement.partner_id).where(m.LeadershipAgreement.lead_id == lead.id)
        )
    )
    lacking = [p for p in ctx.active_partners() if p.id not in agreed]
    if lacking:
        return CheckResult(False, f"not yet agreed by {_names(lacking)}")
    return CheckResult(True, "agreed by all partners", {"overall_lead": lead.id})


def resources_mobilized(ctx: GateContext, each_partner: bool = False) -> CheckResult:
    rows = ctx.session.exec(
        select(m.Resource).where(
            m.Resource.partnership_id == ctx.pid, col(m.Resource.committed).is_(True)
        )
    ).all()
    if not rows:
        return CheckResult(False, "no committed resources recorded")
    pending = [r for r in rows if not r.mobilized]
    if pending:
        return CheckResult(
            False,
            "committed but not mobilized: "
            + ", ".join(f"#{r.id} {r.description[:30]}" for r in pending),
        )
    if each_partner:
        having = {r.partner_id for r in rows}
        lacking = [p for p in ctx.active_partners() if p.id not in having]
        if lacking:
            return CheckResult(False, f"no committed resource from {_names(lacking)}")
    return CheckResult(
        True, f"{len(rows)} committed resources mobilized", {"resource": [r.id for r in rows]}
    )


def schedules_defined(ctx: GateContext, kinds: list[str]) -> CheckResult:
    rows = ctx.session.exec(
        select(m.Schedule).where(
            m.Schedule.partnership_id == ctx.pid, col(m.Schedule.active).is_(True)
        )
    ).all()
    have = {s.kind: s.id for s in rows}
    missing = [k for k in kinds if k not in have]
    if missing:
        return CheckResult(False, f"no active schedule: {', '.join(missing)}")
    return CheckResult(True, "scheduled", {"schedule": {k: have[k] for k in kinds}})


def panel_represents_partners(ctx: GateContext) -> CheckResult:
    partners = ctx.active_partners()
    on_panel = set(
        ctx.session.exec(
            select(m.PanelMember.partner_id).where(m.PanelMember.partnership_id == ctx.pid)
        )
    )
    if not partners:
        return CheckResult(False, "no active partners")
    lacking = [p for p in partners if p.id not in on_panel]
    if lacking:
        return CheckResult(False, f"no panel member for {_names(lacking)}")
    return CheckResult(
        True, f"panel covers all {len(partners)} partners", {"partners": sorted(on_panel)}
    )


def scale_up_decided(ctx: GateContext, dimensions: list[str]) -> CheckResult:
    rows = ctx.session.exec(
        select(m.ScaleUpDecision).where(m.ScaleUpDecision.partnership_id == ctx.pid)
    ).all()
    for row in reversed(rows):  # the latest decision counts
        if row.declined:
            return CheckResult(
                True, f"decided not to scale up: {row.description[:60]}", {"scale_up": row.id}
            )
        named = [d for d in row.dimensions.split(",") if d in dimensions]
        if named:
            return CheckResult(True, f"decided: {', '.join(named)}", {"scale_up": row.id})
    return CheckResult(False, "no decision on scaling up, for it along a dimension or against it")


def outcome_recorded(ctx: GateContext) -> CheckResult:
    if ctx.pending_outcome:
        return CheckResult(True, ctx.pending_outcome, {"outcome": ctx.pending_outcome})
    return CheckResult(False, "no outcome chosen (give one with 'conclude --outcome')")


def attested(ctx: GateContext, task: str) -> CheckResult:
    row = ctx.session.exec(
        select(m.Attestation)
        .where(m.Attestation.partnership_id == ctx.pid, m.Attestation.task == task)
        .order_by(col(m.Attestation.id).desc())
    ).first()
    if row is None:
        return CheckResult(False, f"task {task} not attested")
    if ctx.after is not None and _instant(row.recorded_at) < ctx.after:
        return CheckResult(
            False,
            f"task {task} last attested {_when(row.recorded_at)}; an attestation since "
            f"{_when(ctx.after)} ({ctx.needed}) is needed",
        )
    return CheckResult(
        True, f"attested by {row.recorded_by}", {"attestation": row.id, **_since(ctx)}
    )


EVALUATORS: Mapping[str, Callable[..., CheckResult]] = {
    f.__name__: f
    for f in (
        fields_recorded, records_at_least, each_partner_has, each_partner_fields,
        risk_areas_covered, objectives_covered, activities_assigned, components_led,
        lead_agreed, resources_mobilized, schedules_defined, panel_represents_partners,
        scale_up_decided, outcome_recorded, attested,
    )
}  # fmt: skip


def evaluate(ctx: GateContext, criterion: Criterion) -> CheckResult:
    params = dict(criterion.params)
    if criterion.check == "attested":
        params["task"] = criterion.task
    ctx.after, ctx.needed = _cutoff(ctx, criterion)
    try:
        return EVALUATORS[criterion.check](ctx, **params)
    finally:
        ctx.after, ctx.needed = None, ""


def _cutoff(ctx: GateContext, c: Criterion) -> tuple[datetime | None, str]:
    """The instant from which ``c``'s records count, and how to say why (None: any)."""
    if not c.fresh:
        return None, ""
    from mspflow.definition.freshness import parse_duration

    found: list[tuple[datetime, str]] = []
    if c.since == "visit" and not ctx.backfill:
        start = ctx.visit_start()
        if start is not None:
            found.append((start, "this visit of the step"))
    elif c.since == "cycle" and not ctx.backfill:
        start = ctx.cycle_started()
        if start is not None:
            found.append((start, "this pass round the loop"))
    if c.within is not None and ctx.now is not None:
        found.append((parse_duration(c.within).before(ctx.now), f"within {c.within}"))
    if not found:
        return None, ""
    return max(found)


def _instant(value: Any) -> datetime:
    """A stored time as an aware UTC instant (history times are ISO text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    found: datetime = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    return found


def _when(value: Any) -> str:
    return f"{_instant(value):%Y-%m-%d %H:%M}Z"


def _since(ctx: GateContext) -> dict[str, str]:
    """The window the evidence was judged in, kept with it in the history."""
    if ctx.after is None:
        return {}
    return {"since": _instant(ctx.after).isoformat().replace("+00:00", "Z")}
