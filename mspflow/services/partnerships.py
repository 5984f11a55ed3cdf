"""Partnerships: create, read, list, move, waive, backfill gate debt, scale up.

Every write to a partnership is one database transaction that follows one
rule: the partnership row is read under its row lock (``FOR UPDATE`` on
PostgreSQL; on SQLite the write transaction's ``BEGIN IMMEDIATE`` already
serialises writers), the history event is appended (the chain's own lock is
taken second, so the two locks are always taken in the same order), and the
row is updated *only if its version is the one read* (optimistic
concurrency). A write decided on a state someone changed meanwhile therefore
fails with :class:`~mspflow.errors.ConcurrentChange` and nothing is written;
so does a deadlock or serialisation failure the database reports.

The definition a partnership is pinned to is compiled before the write
transaction opens (:meth:`Partnerships.prepare`), never inside it.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, false, func, or_
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from mspflow import history, inputs
from mspflow.auth import SCHEDULER
from mspflow.definition.model import Transition, Workflow
from mspflow.errors import ConcurrentChange, InvalidInput, NotFound
from mspflow.gates import GateContext, evaluate
from mspflow.machine import CriterionStatus, GateModel, run_transition
from mspflow.services.readmodels import (
    BackfillResult,
    CriterionView,
    DebtRow,
    EventView,
    HistoryView,
    IndicatorProgress,
    MilestoneView,
    ModuleRef,
    MoveOption,
    MoveResult,
    PartnershipDetail,
    PartnershipView,
    PartnerView,
    ScaleUpResult,
    StepRef,
    WaiveResult,
    WorkflowRef,
)
from mspflow.store import models as m
from mspflow.store.definitions import definition_by_hash, definition_for, label, store_definition
from mspflow.store.lookup import concurrency_errors, concurrent, find, version_of

if TYPE_CHECKING:
    from mspflow.services.context import Context

__all__ = ["Partnerships", "criterion_view", "event_view", "gate_statuses"]

_PARTNERSHIPS: Any = m.Partnership.__table__  # type: ignore[attr-defined]
_WAIVERS: Any = m.Waiver.__table__  # type: ignore[attr-defined]


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48] or "partnership"


def _short(wf: Workflow, state: str) -> str:
    step = wf.find_step(state)
    return str(step.number) if step else state


def _entry_step(wf: Workflow, ref: str, allowed: Iterable[str], *, field: str) -> str:
    step = wf.find_step(ref)
    if step is None or step.id not in allowed:
        names = ", ".join(_short(wf, s) for s in allowed)
        raise InvalidInput(
            f"cannot start at step {inputs.shown(ref)}",
            hint=f"possible steps: {names}",
            field=field,
        )
    return step.id


def _expect(p: m.Partnership, expected: int | None) -> None:
    """Refuse a write decided on another version of ``p`` than the one it is at."""
    if expected is not None and expected != p.version:
        raise ConcurrentChange(
            f"partnership {p.slug} is at version {p.version}, not {expected}; nothing was written",
            hint="look at it again and retry",
            field="expect_version",
        )


def waivers(session: Session, p: m.Partnership) -> dict[str, str]:
    """Waivers of the current visit of the current step: criterion -> who waived it."""
    table = _WAIVERS
    rows = session.execute(
        select(table.c.criterion, table.c.actor).where(
            table.c.partnership_id == p.id,
            table.c.step == p.state,
            table.c.seq > p.entered_seq,
        )
    ).all()
    return {criterion: actor for criterion, actor in rows}


def gate_model(
    session: Session,
    p: m.Partnership,
    wf: Workflow,
    now: datetime,
    *,
    outcome: str | None = None,
) -> GateModel:
    """The current step of ``p`` on the shared Machine, its criteria judged from its evidence
    (as fresh as each criterion asks, counted back from ``now``)."""
    ctx = GateContext(
        session, p, outcome, now=now, cycle_start=wf.cycle_start, within_pass=wf.within_pass
    )
    return GateModel(wf.step(p.state), lambda c: evaluate(ctx, c), waivers(session, p))


def gate_statuses(
    session: Session, p: m.Partnership, wf: Workflow, now: datetime
) -> builtins.list[CriterionStatus]:
    """Every criterion of the current step's gate, evaluated at ``now``."""
    if wf.is_final(p.state):
        return []
    return gate_model(session, p, wf, now).gate()


def criterion_view(st: CriterionStatus) -> CriterionView:
    c = st.criterion
    return CriterionView(
        c.id, c.task, c.title, st.state, st.result.detail, c.fix, st.waived_by, c.since, c.within
    )


def event_view(e: Any, wf: Workflow | None) -> EventView:
    """An event as a read model, labelled with its definition's names for its states."""
    import json

    data = json.loads(e.data)
    named = {e.from_state, e.to_state, data.get("step") if isinstance(data, dict) else None}
    labels = {
        state: wf.label(state)
        for state in named
        if isinstance(state, str) and wf is not None and state in wf.states
    }
    tasks: dict[str, str] = {}
    step = wf.find_step(e.from_state) if wf is not None and e.from_state else None
    if step is not None:
        tasks = {c.id: c.task for c in step.gate}
    return EventView(
        seq=e.seq,
        partnership=e.partnership,
        at=e.at,
        actor=e.actor,
        role=e.role,
        kind=e.kind,
        trigger=e.trigger,
        from_state=e.from_state,
        to_state=e.to_state,
        reason=e.reason,
        waived=json.loads(e.waived),
        evidence=json.loads(e.evidence),
        definition=e.definition,
        data=data,
        prev_hash=e.prev_hash,
        hash=e.hash,
        labels=labels,
        tasks=tasks,
    )


class Partnerships:
    """Everything that reads or changes partnerships, for one actor."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- reading ---------------------------------------------------------------
    def row(self, session: Session, ref: str, *, for_update: bool = False) -> m.Partnership:
        """The partnership ``ref`` names, if the actor may read it."""
        p = find(session, ref, for_update=for_update)
        self.ctx.policy.check_read(session, p)
        return p

    def view(self, session: Session, p: m.Partnership, *, detail: bool = False) -> PartnershipView:
        wf = definition_for(session, p)
        debt = int(
            session.exec(
                select(func.count())
                .select_from(m.GateDebt)
                .where(m.GateDebt.partnership_id == p.id, m.GateDebt.status == "open")
            ).one()
        )
        parent = session.get(m.Partnership, p.parent_id) if p.parent_id is not None else None
        return self._view(session, p, wf, debt, parent.slug if parent else None, detail=detail)

    def _view(
        self,
        session: Session,
        p: m.Partnership,
        wf: Workflow,
        debt: int,
        parent: str | None,
        *,
        detail: bool,
    ) -> PartnershipView:
        step = wf.find_step(p.state)
        module = wf.module_of(step) if step is not None else None
        final = wf.is_final(p.state)
        base: dict[str, Any] = {
            "id": p.slug,
            "name": p.name,
            "workflow": WorkflowRef(p.workflow_name, p.workflow_version, p.workflow_hash),
            "state": p.state,
            "step": StepRef(step.number, step.id, step.name) if step else None,
            "module": ModuleRef(module.id, module.name) if module else None,
            "status": "closed" if final else "active",
            "final_state": wf.final_state(p.state).name if final else None,
            "version": p.version,
            "timezone": p.timezone,
            "parent": parent,
            "gate_debt_open": debt,
        }
        if not detail:
            return PartnershipView(**base)
        statuses = gate_statuses(session, p, wf, self.ctx.now())
        criteria = [criterion_view(st) for st in statuses]
        return PartnershipDetail(
            **base,
            criteria=criteria,
            unmet_criteria=[c for c in criteria if c.state == "unmet"],
            moves=[
                MoveOption(
                    t.kind, t.dest, wf.label(t.dest), t.outcome, list(t.gate), t.reason_required
                )
                for t in wf.transitions_from(p.state)
                if t.kind != "review-due"
            ],
            partners=self._partners(session, p),
            indicators=self._indicators(session, p),
            milestones=self._milestones(session, p),
        )

    @staticmethod
    def _indicators(session: Session, p: m.Partnership) -> builtins.list[IndicatorProgress]:
        """Each tracked SDG indicator with its latest value (by date measured)."""
        from mspflow.services.evidence import sdg_indicators

        titles = sdg_indicators()
        values: dict[int, builtins.list[m.IndicatorValue]] = {}
        for v in session.exec(
            select(m.IndicatorValue)
            .where(m.IndicatorValue.partnership_id == p.id)
            .order_by(col(m.IndicatorValue.measured_on), col(m.IndicatorValue.id))
        ):
            values.setdefault(v.indicator_id, []).append(v)
        out = []
        for i in session.exec(
            select(m.SdgIndicator)
            .where(m.SdgIndicator.partnership_id == p.id)
            .order_by(col(m.SdgIndicator.id))
        ):
            mine = values.get(i.id or 0, [])
            last = mine[-1] if mine else None
            span = i.target - i.baseline
            progress = round((last.value - i.baseline) / span, 4) if last and span else None
            out.append(
                IndicatorProgress(
                    i.code, titles.get(i.code, ""), i.unit, i.baseline, i.target,
                    last.value if last else None, last.measured_on if last else None,
                    len(mine), progress,
                )
            )  # fmt: skip
        return out

    def _milestones(self, session: Session, p: m.Partnership) -> builtins.list[MilestoneView]:
        """Milestones by deadline; one past its deadline and not reached is overdue
        (the deadline is a day in the partnership's time zone)."""
        from mspflow.scheduler.times import local_date

        today = local_date(self.ctx.now(), p.timezone)
        return [
            MilestoneView(
                x.id or 0, x.name, x.due_on, x.done_on, x.delay,
                x.done_on is None and x.due_on < today,
            )
            for x in session.exec(
                select(m.Milestone)
                .where(m.Milestone.partnership_id == p.id)
                .order_by(col(m.Milestone.due_on), col(m.Milestone.id))
            )
        ]  # fmt: skip

    @staticmethod
    def _partners(session: Session, p: m.Partnership) -> builtins.list[PartnerView]:
        return [
            PartnerView(
                x.id or 0, x.name, x.sector, x.contact_name, x.contact_email, x.can_decide,
                x.active, x.role,
            )
            for x in session.exec(
                select(m.Partner)
                .where(m.Partner.partnership_id == p.id)
                .order_by(col(m.Partner.id))
            )
        ]  # fmt: skip

    def get(self, *, partnership: str, session: Session | None = None) -> PartnershipView:
        """The partnership as the portfolio lists it."""
        with self.ctx.reading(session) as s:
            return self.view(s, self.row(s, partnership))

    def show(self, *, partnership: str, session: Session | None = None) -> PartnershipDetail:
        """Step and module, every exit criterion and what would satisfy it, the moves
        the definition offers, the partners."""
        with self.ctx.reading(session) as s:
            found = self.view(s, self.row(s, partnership), detail=True)
            assert isinstance(found, PartnershipDetail)
            return found

    def list(
        self,
        *,
        step: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        session: Session | None = None,
    ) -> builtins.list[PartnershipView]:
        """The portfolio the actor may see, in the order partnerships were created.

        ``step`` keeps those at one step (number or id); ``after`` (a slug) and
        ``limit`` page through it.
        """
        if limit is not None:
            limit = inputs.whole(limit, field="limit", low=1)
        with self.ctx.reading(session) as s:
            query = select(m.Partnership).order_by(col(m.Partnership.id))
            visible = self.ctx.policy.visible(s)
            if visible is not None:
                query = query.where(col(m.Partnership.id).in_(sorted(visible)))
            if after is not None:
                start = find(s, after)
                query = query.where(col(m.Partnership.id) > start.id)
            if step is not None:  # the step's state under each definition in use
                pairs = []
                for content_hash in s.exec(select(m.Partnership.workflow_hash).distinct()):
                    here = definition_by_hash(s, content_hash).find_step(step)
                    if here is not None:
                        pairs.append(
                            and_(
                                col(m.Partnership.workflow_hash) == content_hash,
                                col(m.Partnership.state) == here.id,
                            )
                        )
                query = query.where(or_(*pairs) if pairs else false())
            if limit is not None:
                query = query.limit(limit)
            rows = list(s.exec(query))
            debts = dict(
                s.exec(
                    select(m.GateDebt.partnership_id, func.count())
                    .where(m.GateDebt.status == "open")
                    .group_by(col(m.GateDebt.partnership_id))
                ).all()
            )
            slugs = {p.id: p.slug for p in rows}
            out: builtins.list[PartnershipView] = []
            missing = {p.parent_id for p in rows if p.parent_id is not None} - set(slugs)
            if missing:  # parents outside this page: one query for all of them
                slugs.update(
                    s.exec(
                        select(m.Partnership.id, m.Partnership.slug).where(
                            col(m.Partnership.id).in_(sorted(missing))
                        )
                    ).all()
                )
            for p in rows:
                wf = definition_for(s, p)
                parent = slugs.get(p.parent_id) if p.parent_id is not None else None
                out.append(self._view(s, p, wf, int(debts.get(p.id, 0)), parent, detail=False))
            return out

    def history(self, *, partnership: str, session: Session | None = None) -> HistoryView:
        """Every event of the partnership, oldest first."""
        with self.ctx.reading(session) as s:
            p = self.row(s, partnership)
            wf = definition_for(s, p)
            events = s.exec(
                select(m.HistoryEvent)
                .where(m.HistoryEvent.partnership == p.slug)
                .order_by(col(m.HistoryEvent.seq))
            )
            return HistoryView(self.view(s, p), [event_view(e, wf) for e in events])

    def gate_debt(
        self, *, partnership: str, session: Session | None = None
    ) -> builtins.list[DebtRow]:
        """Every criterion skipped at onboarding, and whether it is open, backfilled or waived."""
        with self.ctx.reading(session) as s:
            p = self.row(s, partnership)
            wf = definition_for(s, p)
            return [
                DebtRow(wf.step(d.step).number, d.criterion, d.task, d.status, d.resolved_seq)
                for d in self._debt(s, p)
            ]

    @staticmethod
    def open_debt(s: Session, p: m.Partnership) -> builtins.list[m.GateDebt]:
        """``p``'s gate debt not yet backfilled, waived or retired."""
        return [d for d in Partnerships._debt(s, p) if d.status == "open"]

    @staticmethod
    def _debt(s: Session, p: m.Partnership) -> builtins.list[m.GateDebt]:
        return list(
            s.exec(
                select(m.GateDebt)
                .where(m.GateDebt.partnership_id == p.id)
                .order_by(col(m.GateDebt.id))
            )
        )

    def partners(
        self, *, partnership: str, session: Session | None = None
    ) -> builtins.list[PartnerView]:
        with self.ctx.reading(session) as s:
            return self._partners(s, self.row(s, partnership))

    # -- writing: the common steps ------------------------------------------------
    def prepare(self, ref: str) -> tuple[int, Workflow]:
        """Before a write transaction: the version the write is decided on, and the
        partnership's definition, compiled now so that the transaction never parses."""
        with self.ctx.reading() as s:
            version, content_hash = version_of(s, ref)
            return version, definition_by_hash(s, content_hash, owner=f"partnership {ref}: ")

    def event(
        self,
        s: Session,
        p: m.Partnership | str,
        wf: Workflow,
        kind: str,
        **fields: Any,
    ) -> m.HistoryEvent:
        """Append one event by the acting user, at the clock's now, under ``wf``."""
        actor = self.ctx.actor
        slug = p if isinstance(p, str) else p.slug
        return history.append(
            s,
            partnership=slug,
            at=fields.pop("at", None) or self.ctx.now(),
            actor=actor.name,
            role=actor.role,
            kind=kind,
            definition=label(wf),
            **fields,
        )

    def bump(self, s: Session, p: m.Partnership, seen: int, now: datetime, **values: Any) -> None:
        """Write the partnership row if it is still at version ``seen``; else fail.

        A Core UPDATE (no ORM bookkeeping); the loaded object is then told the
        values it now has, so that reading them costs no second SELECT.
        """
        values = {"version": seen + 1, "updated_at": now, **values}
        with concurrency_errors(p.slug):
            result = s.execute(
                _PARTNERSHIPS.update()
                .where(_PARTNERSHIPS.c.id == p.id, _PARTNERSHIPS.c.version == seen)
                .values(**values)
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise concurrent(p.slug)
        for name, value in values.items():
            set_committed_value(p, name, value)

    def touch(self, s: Session, p: m.Partnership) -> None:
        """Mark a change of the partnership's record (evidence, waivers, debt): bump its
        version, if it is still the version ``p`` was read at.

        A move decided on the record as it was before is then refused as a
        concurrent change; and a write whose partnership changed since it was
        read (without the row lock) fails here, nothing written.
        """
        self.bump(s, p, p.version, self.ctx.now())

    def locked(
        self, s: Session, ref: str, *, action: str, expect_version: int | None = None
    ) -> tuple[m.Partnership, Workflow]:
        """Inside a write: the partnership under its row lock, the actor allowed to
        change it, at the version expected, and its definition."""
        p = find(s, ref, for_update=True)
        self.ctx.policy.check_change(s, p, action=action)
        _expect(p, expect_version)
        return p, definition_for(s, p)

    # -- creating ----------------------------------------------------------------
    def create(
        self,
        *,
        name: str,
        workflow: str | Workflow = "msp-12-step",
        definition_text: str | None = None,
        slug: str | None = None,
        at_step: str | None = None,
        timezone: str = "UTC",
        session: Session | None = None,
    ) -> PartnershipView:
        """A new partnership at the workflow's initial step, or onboarded at ``at_step``.

        ``workflow`` is a bundled workflow's name, a definition file, or a loaded
        definition (with ``definition_text``, the text it was read from).
        Onboarding records every criterion of the steps before ``at_step`` as
        gate debt, to be backfilled or waived later.
        """
        self.ctx.policy.require_role("secretariat", action="create partnerships")
        name = inputs.line(name, field="name")
        timezone = inputs.zone(timezone, field="timezone")
        wf, text = self._definition(workflow, definition_text)
        start = wf.initial if at_step is None else _entry_step(
            wf, at_step, wf.entry_steps, field="at_step"
        )  # fmt: skip
        with self.ctx.writing(slug or name, session) as s:
            p = self._create(s, name=name, wf=wf, text=text, slug=slug, start=start,
                             onboard=at_step is not None, timezone=timezone)  # fmt: skip
            return self.view(s, p)

    @staticmethod
    def _definition(workflow: str | Workflow, text: str | None) -> tuple[Workflow, str]:
        from pathlib import Path

        from mspflow.definition import find_workflow

        wf = find_workflow(workflow) if isinstance(workflow, str) else workflow
        if text is None:
            text = Path(wf.source).read_text(encoding="utf-8")
        return wf, text

    def _create(
        self,
        s: Session,
        *,
        name: str,
        wf: Workflow,
        text: str,
        slug: str | None,
        start: str,
        onboard: bool,
        timezone: str,
        parent: m.Partnership | None = None,
    ) -> m.Partnership:
        now = self.ctx.now()
        slug = self._free_slug(s, slug, name)
        store_definition(s, wf, text, now)
        p = m.Partnership(
            slug=slug,
            name=name,
            workflow_name=wf.name,
            workflow_version=wf.version,
            workflow_hash=wf.content_hash,
            state=start,
            timezone=timezone,
            parent_id=parent.id if parent else None,
            created_at=now,
            updated_at=now,
        )
        s.add(p)
        s.flush()
        start_step = wf.step(start)
        skipped = [st for st in wf.steps if st.number < start_step.number]
        debt = [(st, c) for st in skipped for c in st.gate]
        event = self.event(
            s,
            slug,
            wf,
            "onboard" if onboard and start != wf.initial else "create",
            at=now,
            to_state=start,
            data={
                "name": p.name,
                "parent": parent.slug if parent else None,
                "gate_debt": [f"{st.number}:{c.id}" for st, c in debt],
            },
        )
        p.entered_seq = event.seq
        for st, c in debt:
            s.add(m.GateDebt(partnership_id=p.id, step=st.id, criterion=c.id, task=c.task))
        s.flush()
        self._assign_creator(s, p, now)
        return p

    def _assign_creator(self, s: Session, p: m.Partnership, now: datetime) -> None:
        """A secretariat scoped to assigned partnerships is assigned to what it creates."""
        policy = self.ctx.policy
        if policy.scope != "assigned" or self.ctx.actor == SCHEDULER:
            return
        user = s.exec(select(m.User).where(m.User.name == self.ctx.actor.name)).first()
        if user is None or p.id is None:
            return
        s.add(
            m.Membership(
                partnership_id=p.id, user_id=user.id, added_by=self.ctx.actor.name, added_at=now
            )
        )
        s.flush()
        policy.joined(p.id)

    @staticmethod
    def _free_slug(session: Session, wanted: str | None, name: str) -> str:
        if wanted is not None:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,47}", wanted) or wanted.isdigit():
                raise InvalidInput(
                    f"partnership id {inputs.shown(wanted)} is not usable",
                    hint="use up to 48 lower-case letters, digits and dashes, not only digits",
                    field="slug",
                )
            if session.exec(select(m.Partnership.id).where(m.Partnership.slug == wanted)).first():
                raise InvalidInput(
                    f"partnership id '{wanted}' is taken", hint="choose another", field="slug"
                )
            return wanted
        base = _slugify(name)
        taken = set(
            session.exec(select(m.Partnership.slug).where(col(m.Partnership.slug).startswith(base)))
        )
        slug, n = base, 2
        while slug in taken or slug.isdigit():
            slug, n = f"{base}-{n}", n + 1
        return slug

    # -- moving ------------------------------------------------------------------
    def advance(
        self,
        *,
        partnership: str,
        to: str | None = None,
        reason: str | None = None,
        expect_version: int | None = None,
        session: Session | None = None,
    ) -> MoveResult:
        """Move on through the exit gate of the current step."""
        return self.move(partnership=partnership, kind="advance", dest=to, reason=reason,
                         expect_version=expect_version, session=session)  # fmt: skip

    def revisit(
        self,
        *,
        partnership: str,
        step: str,
        reason: str,
        expect_version: int | None = None,
        session: Session | None = None,
    ) -> MoveResult:
        """Go back to an earlier step, with a reason."""
        return self.move(partnership=partnership, kind="revisit", dest=step, reason=reason,
                         expect_version=expect_version, session=session)  # fmt: skip

    def conclude(
        self,
        *,
        partnership: str,
        outcome: str,
        reason: str | None = None,
        note: str | None = None,
        expect_version: int | None = None,
        session: Session | None = None,
    ) -> MoveResult:
        """Move on from step 12 with an outcome (task 12.1)."""
        return self.move(partnership=partnership, kind="conclude", outcome=outcome,
                         reason=reason, note=note, expect_version=expect_version,
                         session=session)  # fmt: skip

    def move(
        self,
        *,
        partnership: str,
        kind: str,
        dest: str | None = None,
        reason: str | None = None,
        outcome: str | None = None,
        note: str | None = None,
        expect_version: int | None = None,
        data: Mapping[str, Any] | None = None,
        session: Session | None = None,
    ) -> MoveResult:
        """Make one transition of ``kind`` (to ``dest`` or for ``outcome``) in one transaction."""
        ref = partnership
        self.ctx.policy.require_role("secretariat", action="move partnerships")
        if kind == "review-due" and self.ctx.actor != SCHEDULER:
            raise InvalidInput("review-due moves are made by the scheduler only", field="kind")
        if reason is not None:
            reason = inputs.text(reason, field="reason")
        if note is not None:
            note = inputs.text(note, field="note")
        if session is None:
            seen, _wf = self.prepare(ref)
            if expect_version is not None and expect_version != seen:
                raise ConcurrentChange(
                    f"partnership {ref} is at version {seen}, not {expect_version}",
                    hint="look at it again and retry",
                    field="expect_version",
                )
        with self.ctx.writing(ref, session) as s:
            # The row lock first, the history's lock (in history.append) second: the
            # order every write keeps. Under the lock the version cannot change, but it
            # may have changed since the decision began (seen, expect_version).
            p, wf = self.locked(s, ref, action="move partnerships")
            if session is None and p.version != seen:
                raise concurrent(ref)
            _expect(p, expect_version)
            seen = p.version
            if wf.is_final(p.state):
                raise InvalidInput(
                    f"partnership {p.slug} is closed ({wf.label(p.state)})", field="partnership"
                )
            t = self._pick(wf, p, kind, dest, outcome)
            if t.reason_required and not (reason and reason.strip()):
                raise InvalidInput(
                    f"partnership {p.slug}: a reason is required to {kind} to {wf.label(t.dest)}",
                    hint="say why",
                    field="reason",
                )
            if outcome is not None:
                o = wf.outcome(outcome)
                assert o is not None
                if o.reasons and reason not in o.reasons:
                    raise InvalidInput(
                        f"outcome {outcome} needs one of the reasons: {', '.join(o.reasons)}",
                        hint="give one of them as the reason",
                        field="reason",
                    )
            model = gate_model(s, p, wf, self.ctx.now(), outcome=outcome)
            statuses = run_transition(wf, model, p.state, t, partnership=p.slug)
            now = self.ctx.now()
            waived = [st.criterion.id for st in statuses if not st.result.ok]
            jumped = self._jumped(s, p, wf, t, now) if kind == "review-due" else []
            if jumped:
                data = {**(data or {}), "gate_debt": [f"{st.number}:{c.id}" for st, c in jumped]}
            event = self.event(
                s,
                p,
                wf,
                kind,
                at=now,
                trigger=t.trigger,
                from_state=p.state,
                to_state=t.dest,
                reason=reason,
                waived=waived,
                evidence={
                    st.criterion.id: {
                        "task": st.criterion.task,
                        "found": st.result.detail,
                        **st.result.evidence,
                    }
                    for st in statuses
                    if st.result.ok
                },
                data={
                    k: v
                    for k, v in {"outcome": outcome, "note": note, **(data or {})}.items()
                    if v is not None
                },
            )
            source = p.state
            self._owe(s, p, jumped)
            self.bump(s, p, seen, now, state=t.dest, entered_seq=event.seq)
            if outcome is not None:
                s.add(
                    m.OutcomeRecord(
                        partnership_id=p.id,
                        outcome=outcome,
                        reason=reason,
                        note=note,
                        seq=event.seq,
                        recorded_by=self.ctx.actor.name,
                        recorded_at=now,
                    )
                )
                s.flush()
            if session is not None:  # the caller's transaction: read it there
                return MoveResult(self.view(s, p), event.seq, waived, source, t.dest, kind)
        # Read back after the commit, so the write lock is not held for the view's queries.
        with self.ctx.reading() as r:
            view = self.view(r, find(r, p.slug))
        return MoveResult(view, event.seq, waived, source, t.dest, kind)

    @staticmethod
    def _jumped(
        s: Session, p: m.Partnership, wf: Workflow, t: Transition, now: datetime
    ) -> builtins.list[tuple[Any, Any]]:
        """The criteria a scheduled review leaves unmet: those of the step it leaves and
        of every step it jumps over (from 7, step 8 too). They become gate debt."""
        here, there = wf.step(t.source).number, wf.step(t.dest).number
        ctx = GateContext(s, p, now=now, cycle_start=wf.cycle_start, within_pass=wf.within_pass)
        held = waivers(s, p)
        return [
            (st, c)
            for st in wf.steps
            if here <= st.number < there
            for c in st.gate
            if not (st.id == p.state and c.id in held) and not evaluate(ctx, c).ok
        ]

    def _owe(self, s: Session, p: m.Partnership, debt: builtins.list[tuple[Any, Any]]) -> None:
        """Open gate debt for ``debt``; one already owed stays, one settled is owed again."""
        if not debt:
            return
        rows = {
            (d.step, d.criterion): d
            for d in s.exec(select(m.GateDebt).where(m.GateDebt.partnership_id == p.id))
        }
        for st, c in debt:
            row = rows.get((st.id, c.id))
            if row is None:
                s.add(m.GateDebt(partnership_id=p.id, step=st.id, criterion=c.id, task=c.task))
            elif row.status != "open":
                row.status, row.resolved_seq = "open", None
                s.add(row)
        s.flush()

    def _pick(
        self, wf: Workflow, p: m.Partnership, kind: str, dest: str | None, outcome: str | None
    ) -> Transition:
        choices = list(wf.transitions_from(p.state, kind))
        here = wf.label(p.state)
        if kind == "conclude":
            names = ", ".join(t.outcome or "" for t in choices)
            if not choices:
                raise InvalidInput(
                    f"partnership {p.slug} cannot conclude from step {here}",
                    hint="conclude is possible in step 12 (moving on)",
                    field="outcome",
                )
            found = [t for t in choices if t.outcome == outcome]
            if not found:
                raise InvalidInput(
                    f"unknown outcome {inputs.shown(outcome or '')}",
                    hint=f"choose one of: {names}",
                    field="outcome",
                )
            return found[0]
        if not choices:
            raise InvalidInput(f"partnership {p.slug} cannot {kind} from step {here}", field="kind")
        if dest is None:
            step = wf.step(p.state)
            following = [
                t
                for t in choices
                if wf.find_step(t.dest) and wf.step(t.dest).number == step.number + 1
            ]
            if len(choices) == 1:
                return choices[0]
            if len(following) == 1:
                return following[0]
            raise InvalidInput(
                f"partnership {p.slug} can {kind} from {here} to several steps",
                hint="name one: " + ", ".join(_short(wf, t.dest) for t in choices),
                field="dest",
            )
        target = wf.find_step(dest)
        target_id = target.id if target else dest
        for t in choices:
            if t.dest == target_id:
                return t
        raise InvalidInput(
            f"partnership {p.slug} cannot {kind} from {here} to {inputs.shown(dest)}",
            hint="possible: " + ", ".join(_short(wf, t.dest) for t in choices),
            field="dest",
        )

    # -- waivers and gate debt ---------------------------------------------------
    def waive(
        self,
        *,
        partnership: str,
        criterion: str,
        reason: str,
        step: str | None = None,
        expect_version: int | None = None,
        session: Session | None = None,
    ) -> WaiveResult:
        """Waive a criterion of the current step, or settle gate debt of an earlier one.

        ``expect_version``: the version the waiver was decided on; if the
        partnership has changed since (moved on to another step, say), nothing
        is written and ConcurrentChange is raised.
        """
        self.ctx.policy.require_role("secretariat", action="waive criteria")
        if not reason or not reason.strip():
            raise InvalidInput("a waiver needs a reason", hint="say why", field="reason")
        reason = inputs.text(reason, field="reason")
        if session is None:
            self.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p, wf = self.locked(
                s, partnership, action="waive criteria", expect_version=expect_version
            )
            target = wf.step(step) if step is not None and wf.find_step(step) else None
            if step is not None and target is None:
                raise NotFound(f"no step {inputs.shown(step)} in {wf.name}", field="step")
            if target is None:
                if wf.is_final(p.state):
                    raise InvalidInput(
                        f"partnership {p.slug} is closed; nothing to waive", field="partnership"
                    )
                target = wf.step(p.state)
            c = target.criterion(criterion)
            if c is None:
                raise NotFound(
                    f"step {target.number} has no criterion {inputs.shown(criterion)}",
                    hint="criteria: " + ", ".join(x.id for x in target.gate),
                    field="criterion",
                )
            debt = None
            if target.id != p.state:
                debt = s.exec(
                    select(m.GateDebt).where(
                        m.GateDebt.partnership_id == p.id,
                        m.GateDebt.step == target.id,
                        m.GateDebt.criterion == c.id,
                        m.GateDebt.status == "open",
                    )
                ).first()
                if debt is None:
                    raise InvalidInput(
                        f"criterion {c.id} of step {target.number} is not open gate debt of "
                        f"{p.slug}; only the current step's criteria or open debt can be waived",
                        field="criterion",
                    )
            event = self.event(
                s,
                p,
                wf,
                "waive",
                from_state=p.state,
                to_state=p.state,
                reason=reason,
                waived=[c.id],
                data={"step": target.id, "task": c.task, "gate_debt": debt is not None},
            )
            if debt is not None:
                debt.status, debt.resolved_seq = "waived", event.seq
                s.add(debt)
            else:
                s.add(
                    m.Waiver(
                        partnership_id=p.id,
                        step=target.id,
                        criterion=c.id,
                        reason=reason,
                        actor=self.ctx.actor.name,
                        seq=event.seq,
                    )
                )
            self.touch(s, p)
            return WaiveResult(p.slug, c.id, event.seq)

    def backfill(
        self,
        *,
        partnership: str,
        expect_version: int | None = None,
        session: Session | None = None,
    ) -> BackfillResult:
        """Settle every open gate debt whose criterion the evidence now meets."""
        self.ctx.policy.require_role("secretariat", action="backfill gate debt")
        if session is None:
            self.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p, wf = self.locked(
                s, partnership, action="backfill gate debt", expect_version=expect_version
            )
            ctx = GateContext(
                s,
                p,
                now=self.ctx.now(),
                cycle_start=wf.cycle_start,
                within_pass=wf.within_pass,
                backfill=True,
            )
            settled: dict[str, Any] = {}
            still: builtins.list[str] = []
            rows = self.open_debt(s, p)
            for d in rows:
                c = wf.step(d.step).criterion(d.criterion)
                assert c is not None
                result = evaluate(ctx, c)
                key = f"{wf.step(d.step).number}:{c.id}"
                if result.ok:
                    settled[key] = {"task": c.task, "found": result.detail, **result.evidence}
                else:
                    still.append(key)
            if settled:
                event = self.event(
                    s, p, wf, "backfill", from_state=p.state, to_state=p.state, evidence=settled
                )
                for d in rows:
                    if f"{wf.step(d.step).number}:{d.criterion}" in settled:
                        d.status, d.resolved_seq = "backfilled", event.seq
                        s.add(d)
                self.touch(s, p)
            return BackfillResult(sorted(settled), still)

    # -- scaling up (task 11.1) ----------------------------------------------------
    def scale_up(
        self,
        *,
        partnership: str,
        dimensions: Sequence[str],
        description: str,
        decline: bool = False,
        replica: str | None = None,
        start_step: str | None = None,
        expect_version: int | None = None,
        session: Session | None = None,
    ) -> ScaleUpResult:
        """Record the decision on scaling up (task 11.1): along ``dimensions``, or with
        ``decline`` not to (lines 1317-1319: the partners may decide; ``description``
        then gives the reason). With ``replica`` (a name), replicate the MSP.

        The replica is a new partnership linked to its parent, pinned to the
        same definition, starting at one of the definition's scale-up entry
        steps, and holding a copy of the parent's lessons learned, shown but not
        counted as its own. Replicating is going to scale physically (line 1322),
        so a replica needs the physical dimension.
        """
        from mspflow.definition.kinds import SCALE_UP_DIMENSIONS

        self.ctx.policy.require_role("secretariat", action="scale up partnerships")
        wrong = [d for d in dimensions if d not in SCALE_UP_DIMENSIONS]
        if decline and (dimensions or replica is not None):
            raise InvalidInput(
                "a decision not to scale up names no dimension and creates no replica",
                hint="leave the dimensions and the replica out, or do not decline",
                field="dimensions" if dimensions else "replica",
            )
        if not decline and (not dimensions or wrong):
            raise InvalidInput(
                f"scale-up dimension(s) {', '.join(inputs.shown(d) for d in wrong) or 'missing'}",
                hint="give one or more of: "
                + ", ".join(SCALE_UP_DIMENSIONS)
                + (", or decide not to scale up" if not dimensions else ""),
                field="dimensions",
            )
        if replica is not None and "physical" not in dimensions:
            raise InvalidInput(
                "a replica takes the partnership to new places: the physical dimension",
                hint="add the physical dimension to the decision, or leave the replica out",
                field="replica",
            )
        description = inputs.text(description, field="description", required=True)
        if replica is not None:
            replica = inputs.line(replica, field="replica")
        if session is None:
            self.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p, wf = self.locked(
                s, partnership, action="scale up partnerships", expect_version=expect_version
            )
            step = None if wf.is_final(p.state) else wf.step(p.state)
            if step is None or not any(c.check == "scale_up_decided" for c in step.gate):
                raise InvalidInput(
                    f"partnership {p.slug} is at {wf.label(p.state)}; scale-up decisions are "
                    "taken in the scaling-up step",
                    hint="advance it to step 11 first",
                    field="partnership",
                )
            now = self.ctx.now()
            decision = m.ScaleUpDecision(
                partnership_id=p.id,
                dimensions=",".join(dimensions),
                description=description,
                declined=decline,
                recorded_by=self.ctx.actor.name,
                recorded_at=now,
            )
            s.add(decision)
            s.flush()
            child = None
            if replica is not None:
                stored = s.get(m.WorkflowDefinition, p.workflow_hash)
                assert stored is not None
                entry = _entry_step(
                    wf, start_step or wf.scale_up_entry[0], wf.scale_up_entry, field="start_step"
                )
                child = self._create(
                    s,
                    name=replica,
                    wf=wf,
                    text=stored.source_text,
                    slug=None,
                    start=entry,
                    onboard=entry != wf.initial,
                    timezone=p.timezone,
                    parent=p,
                )
                for lesson in s.exec(select(m.Lesson).where(m.Lesson.partnership_id == p.id)):
                    s.add(
                        m.Lesson(
                            partnership_id=child.id,
                            text=lesson.text,
                            inherited_from=p.id,
                            recorded_by=self.ctx.actor.name,
                            recorded_at=now,
                        )
                    )
                decision.replica_id = child.id
                s.add(decision)
            self.event(
                s,
                p,
                wf,
                "scale-up",
                at=now,
                from_state=p.state,
                to_state=p.state,
                data={
                    "dimensions": list(dimensions),
                    "description": description,
                    "replica": child.slug if child else None,
                    **({"declined": True} if decline else {}),
                },
            )
            self.touch(s, p)
            assert decision.id is not None
            return ScaleUpResult(p.slug, decision.id, child.slug if child else None,
                                 list(dimensions))  # fmt: skip
