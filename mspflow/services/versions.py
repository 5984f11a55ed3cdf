"""Versions of a definition: move a partnership from the one it is pinned to onto another.

A partnership runs on the exact definition it was created on (its content hash)
until a secretariat migrates it. A migration keeps the partnership's step, its
evidence and its history; it is one history event (``migrate``), recorded under
the new definition, naming both. A dry run writes nothing and lists what the
new version asks of the current step that the old one did not: criteria that
become unmet or stale. Open gate debt for a criterion the new version no longer
has is retired with the migration (its step and criterion stay in the history).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlmodel import Session, col, select

from mspflow import inputs
from mspflow.definition.model import Workflow
from mspflow.definition.registry import bundled_workflows
from mspflow.errors import InvalidInput, NotFound
from mspflow.services.context import Context
from mspflow.services.partnerships import Partnerships, criterion_view, gate_statuses
from mspflow.services.readmodels import CriterionView, MigrateResult
from mspflow.store import models as m
from mspflow.store.definitions import definition_by_hash, definition_for, label, store_definition
from mspflow.store.lookup import find

__all__ = ["Versions"]


class Versions:
    """Which versions of a definition exist, and migrating partnerships between them."""

    def __init__(self, ctx: Context, partnerships: Partnerships) -> None:
        self.ctx = ctx
        self.partnerships = partnerships

    def migrate(
        self,
        *,
        partnership: str,
        to: str,
        dry_run: bool = False,
        expect_version: int | None = None,
    ) -> MigrateResult:
        """Pin ``partnership`` to version ``to`` of its definition (see the module)."""
        self.ctx.policy.require_role("secretariat", action="migrate partnerships")
        to = inputs.line(to, field="to")
        with self.ctx.reading() as s:
            p = find(s, partnership)
            self.ctx.policy.check_change(s, p, action="migrate partnerships")
            old = definition_for(s, p)
            new, text = self._target(s, old.name, to)
            result = self._judge(s, p, old, new, dry_run=True)
        if dry_run or not result.changed:
            return result
        with self.ctx.writing(partnership) as s:
            p, old = self.partnerships.locked(
                s, partnership, action="migrate partnerships", expect_version=expect_version
            )
            seen = p.version
            if text is not None:
                store_definition(s, new, text, self.ctx.now())
            result = self._judge(s, p, old, new, dry_run=False)
            event = self.partnerships.event(
                s,
                p,
                new,
                "migrate",
                from_state=p.state,
                to_state=p.state,
                data={
                    "from": label(old),
                    "to": label(new),
                    "unmet": [c.criterion for c in result.unmet],
                    "retired_debt": result.retired_debt,
                },
            )
            retire = set(result.retired_debt)
            for d in self.partnerships.open_debt(s, p):
                if f"{d.step}:{d.criterion}" in retire:
                    d.status, d.resolved_seq = "retired", event.seq
                    s.add(d)
            self.partnerships.bump(
                s,
                p,
                seen,
                self.ctx.now(),
                workflow_version=new.version,
                workflow_hash=new.content_hash,
            )
            return replace(result, event=event.seq)

    def migrate_all(self, *, to: str, workflow: str, dry_run: bool = False) -> list[MigrateResult]:
        """Every open partnership on another version of ``workflow`` that the actor may
        change, one transaction each (a failure stops the run; those done stay done)."""
        self.ctx.policy.require_role("secretariat", action="migrate partnerships")
        workflow = inputs.line(workflow, field="workflow")
        with self.ctx.reading() as s:
            new, _text = self._target(s, workflow, inputs.line(to, field="to"))
            query = (
                select(m.Partnership.slug)
                .where(
                    m.Partnership.workflow_name == workflow,
                    m.Partnership.workflow_hash != new.content_hash,
                )
                .order_by(col(m.Partnership.id))
            )
            visible = self.ctx.policy.visible(s)
            if visible is not None:
                query = query.where(col(m.Partnership.id).in_(sorted(visible)))
            slugs = list(s.exec(query))
        out = []
        for slug in slugs:
            with self.ctx.reading() as s:
                p = find(s, slug)
                if definition_for(s, p).is_final(p.state):
                    continue  # a closed partnership keeps the definition it closed on
            out.append(self.migrate(partnership=slug, to=to, dry_run=dry_run))
        return out

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def _target(s: Session, name: str, version: str) -> tuple[Workflow, str | None]:
        """Version ``version`` of ``name``: as stored (the latest stored, if several), or
        as bundled with mspflow (then with its text, to be stored)."""
        stored = list(
            s.exec(
                select(m.WorkflowDefinition)
                .where(m.WorkflowDefinition.name == name)
                .order_by(col(m.WorkflowDefinition.stored_at).desc())
            )
        )
        for row in stored:
            if row.version == version:
                return definition_by_hash(s, row.content_hash), None
        bundled = [wf for wf in bundled_workflows() if wf.name == name]
        for wf in bundled:
            if wf.version == version:
                return wf, Path(wf.source).read_text(encoding="utf-8")
        known = sorted({r.version for r in stored} | {wf.version for wf in bundled})
        raise NotFound(
            f"{name} has no version {inputs.shown(version)}",
            hint="versions: " + ", ".join(known),
            field="to",
        )

    def _judge(
        self, s: Session, p: m.Partnership, old: Workflow, new: Workflow, *, dry_run: bool
    ) -> MigrateResult:
        """What moving ``p`` from ``old`` to ``new`` would change at its current step."""
        if old.is_final(p.state):
            raise InvalidInput(
                f"partnership {p.slug} is closed ({old.label(p.state)}); it keeps its definition",
                field="partnership",
            )
        if p.state not in new.states:
            raise InvalidInput(
                f"partnership {p.slug} is at {old.label(p.state)}, which version "
                f"{new.version} of {new.name} does not have",
                hint="move it to a step both versions have first",
                field="to",
            )
        changed = new.content_hash != old.content_hash
        now = self.ctx.now()
        before = {st.criterion.id: st for st in gate_statuses(s, p, old, now)}
        unmet: list[CriterionView] = []
        if changed:
            for st in gate_statuses(s, p, new, now):
                was = before.get(st.criterion.id)
                if st.state == "unmet" and (was is None or was.state != "unmet"):
                    unmet.append(criterion_view(st))
        retired = [
            f"{d.step}:{d.criterion}"
            for d in self.partnerships.open_debt(s, p)
            if changed
            and (new.find_step(d.step) is None or new.step(d.step).criterion(d.criterion) is None)
        ]
        return MigrateResult(
            id=p.slug,
            state=p.state,
            from_version=old.version,
            to_version=new.version,
            dry_run=dry_run,
            changed=changed,
            event=None,
            unmet=unmet,
            retired_debt=retired,
        )
