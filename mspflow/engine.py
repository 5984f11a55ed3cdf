"""Partnership state machines: one shared ``transitions.Machine`` per definition.

A partnership's state lives in the database; for one operation it is attached
to the Machine of its pinned definition (``add_model`` with the stored state),
moved, and detached again. Gate criteria are the Machine's ``conditions``;
``may_<trigger>`` answers whether a move would pass without making it, and
the unmet criteria are then listed one by one.

Every write to a partnership (a move, a waiver, a backfill, a scale-up
decision, a piece of evidence) is one database transaction that follows one
rule: the partnership row is read under its row lock (``FOR UPDATE`` on
PostgreSQL; on SQLite the write transaction's ``BEGIN IMMEDIATE`` already
serialises writers), the history event is appended (the chain's own lock is
taken second, so the two locks are always taken in the same order), and the
row is updated *only if its version is the one read* (optimistic
concurrency). A write decided on a state someone changed meanwhile therefore
fails with :class:`~mspflow.errors.ConcurrentChange` (exit 5) and nothing is
written; so does a deadlock or serialisation failure the database reports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select
from transitions import Machine

from mspflow import history, inputs
from mspflow.auth import SCHEDULER, Actor, require_role
from mspflow.clock import Clock
from mspflow.definition.loader import parse_workflow
from mspflow.definition.model import Criterion, Step, Transition, Workflow
from mspflow.errors import (
    ConcurrentChange,
    GateNotMet,
    InvalidInput,
    NotFound,
    UnmetCriterion,
)
from mspflow.gates import CheckResult, GateContext, evaluate
from mspflow.store import models as m
from mspflow.store import write_session

__all__ = [
    "CriterionStatus",
    "PartnershipService",
    "definition_by_hash",
    "definition_for",
    "machine_for",
    "store_definition",
]


# --------------------------------------------------------------------------- machines


class _Gate:
    """A Machine condition: the named criteria of the source step pass or are waived."""

    def __init__(self, criteria: Sequence[str]) -> None:
        self.criteria = tuple(criteria)

    def __call__(self, event: Any) -> bool:
        model: _Model = event.model
        return all(model.status(c).passed for c in self.criteria)


_machines: dict[str, Machine] = {}
_PARTNERSHIPS: Any = m.Partnership.__table__  # type: ignore[attr-defined]
_WAIVERS: Any = m.Waiver.__table__  # type: ignore[attr-defined]


def machine_for(wf: Workflow) -> Machine:
    """The one Machine for this definition (keyed by content hash), built once."""
    machine = _machines.get(wf.content_hash)
    if machine is None:
        machine = Machine(
            model=None,
            states=list(wf.states),
            initial=None,
            auto_transitions=False,
            send_event=True,
            model_attribute="state",
        )
        for t in wf.transitions:
            machine.add_transition(t.trigger, t.source, t.dest, conditions=[_Gate(t.gate)])
        _machines[wf.content_hash] = machine
    return machine


@dataclass(frozen=True)
class CriterionStatus:
    criterion: Criterion
    result: CheckResult
    waived_by: str | None = None

    @property
    def passed(self) -> bool:
        return self.result.ok or self.waived_by is not None

    @property
    def state(self) -> str:
        return "met" if self.result.ok else ("waived" if self.waived_by else "unmet")

    def unmet(self) -> UnmetCriterion:
        c = self.criterion
        return UnmetCriterion(c.id, c.task, c.title, self.result.detail, c.fix or "record it")


class _Model:
    """What the shared Machine moves: one partnership's state, for one operation."""

    state: str

    def __init__(self, step: Step, ctx: GateContext, waivers: dict[str, str]) -> None:
        self.step = step
        self.ctx = ctx
        self.waivers = waivers
        self._cache: dict[str, CriterionStatus] = {}

    def status(self, criterion_id: str) -> CriterionStatus:
        found = self._cache.get(criterion_id)
        if found is None:
            criterion = self.step.criterion(criterion_id)
            assert criterion is not None, criterion_id  # the loader checked the reference
            found = CriterionStatus(
                criterion, evaluate(self.ctx, criterion), self.waivers.get(criterion_id)
            )
            self._cache[criterion_id] = found
        return found


# --------------------------------------------------------------------------- definitions


def store_definition(session: Session, wf: Workflow, text: str, now: datetime) -> None:
    if session.get(m.WorkflowDefinition, wf.content_hash) is None:
        session.add(
            m.WorkflowDefinition(
                content_hash=wf.content_hash,
                name=wf.name,
                version=wf.version,
                source_text=text,
                stored_at=now,
            )
        )
        session.flush()


_PARSED: dict[str, Workflow] = {}


def _parse_stored(content_hash: str, text: str, name: str) -> Workflow:
    """Parse a stored definition once per process: its hash names its content."""
    wf = _PARSED.get(content_hash)
    if wf is None:
        wf = _PARSED[content_hash] = parse_workflow(text, f"<stored {name} {content_hash[:12]}>")
    return wf


def definition_by_hash(session: Session, content_hash: str, *, owner: str = "") -> Workflow:
    """The stored definition with this content hash, parsed once per process."""
    cached = _PARSED.get(content_hash)
    if cached is not None:
        return cached
    row = session.get(m.WorkflowDefinition, content_hash)
    if row is None:
        raise NotFound(f"{owner}its definition {content_hash[:12]} is missing")
    return _parse_stored(row.content_hash, row.source_text, row.name)


def definition_for(session: Session, p: m.Partnership) -> Workflow:
    """The definition a partnership is pinned to, from the copy kept in the database."""
    return definition_by_hash(session, p.workflow_hash, owner=f"partnership {p.slug}: ")


# --------------------------------------------------------------------------- service


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48] or "partnership"


@dataclass
class Move:
    """A transition that was made."""

    partnership: str
    kind: str
    source: str
    dest: str
    seq: int
    waived: list[str] = field(default_factory=list)


class PartnershipService:
    """Everything that reads or changes partnerships, on one database."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # -- reading -------------------------------------------------------------
    def get(self, session: Session, ref: str, *, for_update: bool = False) -> m.Partnership:
        """The partnership named by slug or row id; ``for_update`` holds its row lock
        (PostgreSQL) until the transaction ends, for writes decided on what was read."""
        if not _may_name(ref):
            raise _not_found(ref)
        row_id = _row_id(ref)
        p: m.Partnership | None = None
        with _concurrency_errors(ref):  # waiting for the lock may end in a deadlock
            query = select(m.Partnership).where(m.Partnership.slug == ref)
            if for_update:
                query = query.with_for_update()
            p = session.exec(query).first()
            if p is None and row_id is not None:
                p = session.get(m.Partnership, row_id, with_for_update=for_update)
        if p is None:
            raise _not_found(ref)
        return p

    @contextmanager
    def writing(self, ref: str) -> Iterator[Session]:
        """One write transaction on partnership ``ref``, in which a deadlock or a
        serialisation failure the database reports becomes ConcurrentChange (exit 5):
        nothing was written and a retry may go through."""
        with _concurrency_errors(ref), write_session(self.engine) as s:
            yield s

    def seen_version(self, ref: str) -> int:
        """The partnership's version as a move starts deciding (one Core SELECT).

        The write transaction that follows refuses to change the row unless it
        is still at this version, so whatever was decided on a state someone
        changed meanwhile is not written (exit 5).
        """
        table = _PARTNERSHIPS
        if not _may_name(ref):
            raise _not_found(ref)
        row_id = _row_id(ref)
        with self.engine.connect() as conn:
            row = conn.execute(select(table.c.version).where(table.c.slug == ref)).first()
            if row is None and row_id is not None:
                row = conn.execute(select(table.c.version).where(table.c.id == row_id)).first()
        if row is None:
            raise _not_found(ref)
        return int(row[0])

    def gate_status(
        self, session: Session, p: m.Partnership, wf: Workflow, *, outcome: str | None = None
    ) -> list[CriterionStatus]:
        """Every criterion of the current step's gate, evaluated now."""
        if wf.is_final(p.state):
            return []
        step = wf.step(p.state)
        model = _Model(step, GateContext(session, p, outcome), self._waivers(session, p))
        return [model.status(c.id) for c in step.gate]

    def _waivers(self, session: Session, p: m.Partnership) -> dict[str, str]:
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

    # -- creating ------------------------------------------------------------
    def create(
        self,
        actor: Actor,
        *,
        name: str,
        wf: Workflow,
        definition_text: str,
        slug: str | None = None,
        at_step: str | None = None,
        timezone: str = "UTC",
        parent: m.Partnership | None = None,
        session: Session | None = None,
    ) -> m.Partnership:
        """A new partnership at the workflow's initial step, or onboarded at ``at_step``.

        Onboarding records every criterion of the steps before ``at_step`` as
        gate debt, to be backfilled or waived later.
        """
        require_role(actor, "secretariat", action="create partnerships")
        name = inputs.line(name, field="name")
        timezone = inputs.zone(timezone, field="timezone")
        start = wf.initial if at_step is None else _entry_step(wf, at_step, wf.entry_steps)
        if session is None:
            with self.writing(slug or name) as s:
                return self.create(
                    actor,
                    name=name,
                    wf=wf,
                    definition_text=definition_text,
                    slug=slug,
                    at_step=at_step,
                    timezone=timezone,
                    parent=parent,
                    session=s,
                )
        now = self.clock.now()
        slug = self._free_slug(session, slug, name)
        store_definition(session, wf, definition_text, now)
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
        session.add(p)
        session.flush()
        start_step = wf.step(start)
        skipped = [st for st in wf.steps if st.number < start_step.number]
        debt = [(st, c) for st in skipped for c in st.gate]
        event = history.append(
            session,
            partnership=slug,
            at=now,
            actor=actor.name,
            role=actor.role,
            kind="onboard" if at_step is not None and start != wf.initial else "create",
            definition=_definition_label(wf),
            to_state=start,
            data={
                "name": p.name,
                "parent": parent.slug if parent else None,
                "gate_debt": [f"{s.number}:{c.id}" for s, c in debt],
            },
        )
        p.entered_seq = event.seq
        for st, c in debt:
            session.add(m.GateDebt(partnership_id=p.id, step=st.id, criterion=c.id, task=c.task))
        session.flush()
        return p

    def _free_slug(self, session: Session, wanted: str | None, name: str) -> str:
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

    # -- moving --------------------------------------------------------------
    def options(self, wf: Workflow, state: str, kind: str) -> list[Transition]:
        return list(wf.transitions_from(state, kind))

    def move(
        self,
        actor: Actor,
        ref: str,
        *,
        kind: str,
        dest: str | None = None,
        reason: str | None = None,
        outcome: str | None = None,
        note: str | None = None,
        expect_version: int | None = None,
        data: dict[str, Any] | None = None,
        on_moved: Callable[[Session, m.Partnership, m.HistoryEvent], None] | None = None,
    ) -> Move:
        """Make one transition of ``kind`` (to ``dest`` or for ``outcome``) in one transaction."""
        require_role(actor, "secretariat", action="move partnerships")
        if kind == "review-due" and actor != SCHEDULER:
            raise InvalidInput("review-due moves are made by the scheduler only")
        if reason is not None:
            reason = inputs.text(reason, field="reason")
        if note is not None:
            note = inputs.text(note, field="note")
        seen_version = self.seen_version(ref)
        if expect_version is not None and expect_version != seen_version:
            raise ConcurrentChange(
                f"partnership {ref} is at version {seen_version}, not {expect_version}",
                hint="look at it again ('mspflow partnership show') and retry",
            )
        with self.writing(ref) as s:
            # The row lock first, the history's lock (in history.append) second: the
            # order every write keeps. Under the lock the version cannot change, but it
            # may have changed since the decision began (seen_version, expect_version).
            p = self.get(s, ref, for_update=True)
            if p.version != seen_version:
                raise _concurrent(ref)
            wf = definition_for(s, p)
            if wf.is_final(p.state):
                raise InvalidInput(f"partnership {p.slug} is closed ({wf.label(p.state)})")
            t = self._pick(wf, p, kind, dest, outcome)
            if t.reason_required and not (reason and reason.strip()):
                raise InvalidInput(
                    f"partnership {p.slug}: a reason is required to {kind} to {wf.label(t.dest)}",
                    hint="add --reason TEXT",
                )
            if outcome is not None:
                o = wf.outcome(outcome)
                assert o is not None
                if o.reasons and reason not in o.reasons:
                    raise InvalidInput(
                        f"outcome {outcome} needs one of the reasons: {', '.join(o.reasons)}",
                        hint="add --reason REASON",
                    )
            step = wf.step(p.state)
            model = _Model(step, GateContext(s, p, outcome), self._waivers(s, p))
            machine = machine_for(wf)
            machine.add_model(model, initial=p.state)
            try:
                if not getattr(model, f"may_{t.trigger}")():
                    unmet = [model.status(c).unmet() for c in t.gate if not model.status(c).passed]
                    raise GateNotMet(p.slug, wf.label(p.state), wf.label(t.dest), unmet)
                getattr(model, t.trigger)()
            finally:
                machine.remove_model(model)
            assert model.state == t.dest
            statuses = [model.status(c) for c in t.gate]
            now = self.clock.now()
            event = history.append(
                s,
                partnership=p.slug,
                at=now,
                actor=actor.name,
                role=actor.role,
                kind=kind,
                trigger=t.trigger,
                from_state=p.state,
                to_state=t.dest,
                reason=reason,
                waived=[st.criterion.id for st in statuses if not st.result.ok],
                evidence={
                    st.criterion.id: {
                        "task": st.criterion.task,
                        "found": st.result.detail,
                        **st.result.evidence,
                    }
                    for st in statuses
                    if st.result.ok
                },
                definition=_definition_label(wf),
                data={
                    k: v
                    for k, v in {"outcome": outcome, "note": note, **(data or {})}.items()
                    if v is not None
                },
            )
            self._bump(s, p, seen_version, now, state=t.dest, entered_seq=event.seq)
            if outcome is not None:
                s.add(
                    m.OutcomeRecord(
                        partnership_id=p.id,
                        outcome=outcome,
                        reason=reason,
                        note=note,
                        seq=event.seq,
                        recorded_by=actor.name,
                        recorded_at=now,
                    )
                )
            if on_moved is not None:
                on_moved(s, p, event)
            return Move(
                p.slug,
                kind,
                event.from_state or "",
                t.dest,
                event.seq,
                [st.criterion.id for st in statuses if not st.result.ok],
            )

    def _pick(
        self, wf: Workflow, p: m.Partnership, kind: str, dest: str | None, outcome: str | None
    ) -> Transition:
        choices = self.options(wf, p.state, kind)
        here = wf.label(p.state)
        if kind == "conclude":
            names = ", ".join(t.outcome or "" for t in choices)
            if not choices:
                raise InvalidInput(
                    f"partnership {p.slug} cannot conclude from step {here}",
                    hint="conclude is possible in step 12 (moving on)",
                )
            found = [t for t in choices if t.outcome == outcome]
            if not found:
                raise InvalidInput(f"unknown outcome '{outcome}'", hint=f"choose one of: {names}")
            return found[0]
        if not choices:
            raise InvalidInput(f"partnership {p.slug} cannot {kind} from step {here}")
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
                hint="name one with --to: " + ", ".join(_short(wf, t.dest) for t in choices),
            )
        target = wf.find_step(dest)
        target_id = target.id if target else dest
        for t in choices:
            if t.dest == target_id:
                return t
        raise InvalidInput(
            f"partnership {p.slug} cannot {kind} from {here} to {dest}",
            hint="possible: " + ", ".join(_short(wf, t.dest) for t in choices),
        )

    def _bump(self, s: Session, p: m.Partnership, seen: int, now: datetime, **values: Any) -> None:
        """Write the partnership row if it is still at version ``seen``; else fail.

        A Core UPDATE (no ORM bookkeeping); the loaded object is then told the
        values it now has, so that reading them costs no second SELECT.
        """
        values = {"version": seen + 1, "updated_at": now, **values}
        with _concurrency_errors(p.slug):
            result = s.execute(
                _PARTNERSHIPS.update()
                .where(_PARTNERSHIPS.c.id == p.id, _PARTNERSHIPS.c.version == seen)
                .values(**values)
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise _concurrent(p.slug)
        for name, value in values.items():
            set_committed_value(p, name, value)

    def touch(self, s: Session, p: m.Partnership) -> None:
        """Mark a change of the partnership's record (evidence, waivers, debt): bump its
        version, if it is still the version ``p`` was read at.

        A move decided on the record as it was before is then refused as a
        concurrent change; and a write whose partnership changed since it was
        read (without the row lock) fails here, exit 5, nothing written.
        """
        self._bump(s, p, p.version, self.clock.now())

    # -- waivers and gate debt -----------------------------------------------
    def waive(
        self,
        actor: Actor,
        ref: str,
        criterion: str,
        reason: str,
        step: str | None = None,
        *,
        expect_version: int | None = None,
    ) -> m.HistoryEvent:
        """Waive a criterion of the current step, or settle gate debt of an earlier one.

        ``expect_version``: the version the waiver was decided on; if the
        partnership has changed since (moved on to another step, say), nothing
        is written and ConcurrentChange is raised.
        """
        require_role(actor, "secretariat", action="waive criteria")
        if not reason or not reason.strip():
            raise InvalidInput("a waiver needs a reason", hint="add --reason TEXT", field="reason")
        reason = inputs.text(reason, field="reason")
        with self.writing(ref) as s:
            p = self.get(s, ref, for_update=True)
            _expect(p, expect_version)
            wf = definition_for(s, p)
            target = wf.step(step) if step is not None and wf.find_step(step) else None
            if step is not None and target is None:
                raise NotFound(f"no step {inputs.shown(step)} in {wf.name}", field="step")
            if target is None:
                if wf.is_final(p.state):
                    raise InvalidInput(f"partnership {p.slug} is closed; nothing to waive")
                target = wf.step(p.state)
            c = target.criterion(criterion)
            if c is None:
                raise NotFound(
                    f"step {target.number} has no criterion {inputs.shown(criterion)}",
                    hint="criteria: " + ", ".join(x.id for x in target.gate),
                )
            now = self.clock.now()
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
                        f"{p.slug}; only the current step's criteria or open debt can be waived"
                    )
            event = history.append(
                s,
                partnership=p.slug,
                at=now,
                actor=actor.name,
                role=actor.role,
                kind="waive",
                from_state=p.state,
                to_state=p.state,
                reason=reason,
                waived=[c.id],
                definition=_definition_label(wf),
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
                        actor=actor.name,
                        seq=event.seq,
                    )
                )
            self.touch(s, p)
            return event

    def gate_debt(self, session: Session, p: m.Partnership) -> list[m.GateDebt]:
        return list(
            session.exec(
                select(m.GateDebt)
                .where(m.GateDebt.partnership_id == p.id)
                .order_by(col(m.GateDebt.id))
            )
        )

    def backfill(
        self, actor: Actor, ref: str, *, expect_version: int | None = None
    ) -> tuple[list[str], list[str]]:
        """Settle every open gate debt whose criterion the evidence now meets.

        ``expect_version``: as for :meth:`waive`.
        """
        require_role(actor, "secretariat", action="backfill gate debt")
        with self.writing(ref) as s:
            p = self.get(s, ref, for_update=True)
            _expect(p, expect_version)
            wf = definition_for(s, p)
            ctx = GateContext(s, p)
            settled: dict[str, Any] = {}
            still: list[str] = []
            rows = [d for d in self.gate_debt(s, p) if d.status == "open"]
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
                event = history.append(
                    s,
                    partnership=p.slug,
                    at=self.clock.now(),
                    actor=actor.name,
                    role=actor.role,
                    kind="backfill",
                    from_state=p.state,
                    to_state=p.state,
                    evidence=settled,
                    definition=_definition_label(wf),
                )
                for d in rows:
                    if f"{wf.step(d.step).number}:{d.criterion}" in settled:
                        d.status, d.resolved_seq = "backfilled", event.seq
                        s.add(d)
                self.touch(s, p)
            return sorted(settled), still

    # -- scaling up (task 11.1) ------------------------------------------------
    def scale_up(
        self,
        actor: Actor,
        ref: str,
        *,
        dimensions: Sequence[str],
        description: str,
        replica_name: str | None = None,
        replica_step: str | None = None,
        expect_version: int | None = None,
    ) -> tuple[m.ScaleUpDecision, m.Partnership | None]:
        """Record a scale-up decision; with ``replica_name``, replicate the MSP.

        The replica is a new partnership linked to its parent, pinned to the
        same definition, starting at one of the definition's scale-up entry
        steps, and holding a copy of the parent's lessons learned.
        ``expect_version``: as for :meth:`waive`.
        """
        from mspflow.definition.checks import SCALE_UP_DIMENSIONS

        require_role(actor, "secretariat", action="scale up partnerships")
        wrong = [d for d in dimensions if d not in SCALE_UP_DIMENSIONS]
        if not dimensions or wrong:
            raise InvalidInput(
                f"scale-up dimension(s) {', '.join(wrong) or 'missing'}",
                hint="give --dimension with: " + ", ".join(SCALE_UP_DIMENSIONS),
            )
        description = inputs.text(description, field="description", required=True)
        if replica_name is not None:
            replica_name = inputs.line(replica_name, field="replica_name")
        with self.writing(ref) as s:
            p = self.get(s, ref, for_update=True)
            _expect(p, expect_version)
            wf = definition_for(s, p)
            step = None if wf.is_final(p.state) else wf.step(p.state)
            if step is None or not any(c.check == "scale_up_decided" for c in step.gate):
                raise InvalidInput(
                    f"partnership {p.slug} is at {wf.label(p.state)}; scale-up decisions are "
                    "taken in the scaling-up step",
                    hint=f"advance it there first ('mspflow advance {p.slug} --to 11')",
                )
            now = self.clock.now()
            decision = m.ScaleUpDecision(
                partnership_id=p.id,
                dimensions=",".join(dimensions),
                description=description,
                recorded_by=actor.name,
                recorded_at=now,
            )
            s.add(decision)
            s.flush()
            replica = None
            if replica_name is not None:
                stored = s.get(m.WorkflowDefinition, p.workflow_hash)
                assert stored is not None
                entry = _entry_step(wf, replica_step or wf.scale_up_entry[0], wf.scale_up_entry)
                replica = self.create(
                    actor,
                    name=replica_name,
                    wf=wf,
                    definition_text=stored.source_text,
                    at_step=None if entry == wf.initial else entry,
                    timezone=p.timezone,
                    parent=p,
                    session=s,
                )
                for lesson in s.exec(select(m.Lesson).where(m.Lesson.partnership_id == p.id)):
                    s.add(
                        m.Lesson(
                            partnership_id=replica.id,
                            text=lesson.text,
                            inherited_from=p.id,
                            recorded_by=actor.name,
                            recorded_at=now,
                        )
                    )
                decision.replica_id = replica.id
                s.add(decision)
            history.append(
                s,
                partnership=p.slug,
                at=now,
                actor=actor.name,
                role=actor.role,
                kind="scale-up",
                from_state=p.state,
                to_state=p.state,
                definition=_definition_label(wf),
                data={
                    "dimensions": list(dimensions),
                    "description": description,
                    "replica": replica.slug if replica else None,
                },
            )
            self.touch(s, p)
            return decision, replica

    # -- history ---------------------------------------------------------------
    def history(self, session: Session, p: m.Partnership) -> list[m.HistoryEvent]:
        return list(
            session.exec(
                select(m.HistoryEvent)
                .where(m.HistoryEvent.partnership == p.slug)
                .order_by(col(m.HistoryEvent.seq))
            )
        )


def _concurrent(ref: str) -> ConcurrentChange:
    return ConcurrentChange(
        f"partnership {ref} was changed by someone else meanwhile; nothing was written",
        hint="look at it again and retry",
    )


def _expect(p: m.Partnership, expected: int | None) -> None:
    """Refuse a write decided on another version of ``p`` than the one it is at."""
    if expected is not None and expected != p.version:
        raise ConcurrentChange(
            f"partnership {p.slug} is at version {p.version}, not {expected}; "
            "nothing was written",
            hint="look at it again and retry",
        )


#: SQLSTATEs after which the transaction is gone but a retry may succeed:
#: serialization_failure, deadlock_detected (PostgreSQL).
_RETRY_STATES = frozenset({"40001", "40P01"})


@contextmanager
def _concurrency_errors(ref: str) -> Iterator[None]:
    """A deadlock or serialisation failure reported by the database, as ConcurrentChange."""
    try:
        yield
    except DBAPIError as exc:
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if state in _RETRY_STATES:
            raise _concurrent(ref) from None
        raise


def _may_name(ref: str) -> bool:
    """Whether ``ref`` may name a partnership at all. A NUL (which PostgreSQL refuses
    in text) or an over-long value cannot, and is not sent to the database."""
    return "\x00" not in ref and len(ref) <= inputs.NAME_MAX


def _row_id(ref: str) -> int | None:
    """The row id ``ref`` names, if it is one (slugs are never all digits); None for
    numbers no id column holds, which would overflow PostgreSQL's integer."""
    if re.fullmatch(r"[0-9]{1,10}", ref) and int(ref) <= inputs.INT_MAX:
        return int(ref)
    return None


def _not_found(ref: str) -> NotFound:
    return NotFound(
        f"no partnership {inputs.shown(ref)}", hint="'mspflow partnership list' shows them"
    )


def _short(wf: Workflow, state: str) -> str:
    step = wf.find_step(state)
    return str(step.number) if step else state


def _definition_label(wf: Workflow) -> str:
    return f"{wf.name}@{wf.version}#{wf.content_hash[:16]}"


def _entry_step(wf: Workflow, ref: str, allowed: Iterable[str]) -> str:
    step = wf.find_step(ref)
    if step is None or step.id not in allowed:
        names = ", ".join(_short(wf, s) for s in allowed)
        raise InvalidInput(
            f"cannot start at step {inputs.shown(ref)}", hint=f"possible steps: {names}"
        )
    return step.id

