"""Finding events in the whole history: by partnership, actor, step, kind and time.

Filters become SQL (the partnership, actor and kind columns are indexed), and
rows are fetched in chunks, so a query over a large history streams instead of
loading it whole. Times are compared as the stored ISO strings, which sort in
time order because every instant is kept in UTC with the same layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from mspflow.definition.model import Workflow
from mspflow.errors import InvalidInput, NotFound
from mspflow.history import format_instant
from mspflow.store import models as m
from mspflow.store.definitions import definition_by_hash
from mspflow.store.lookup import find

__all__ = [
    "Definitions",
    "LogFilter",
    "find_partnerships",
    "iter_events",
    "step_states",
]

CHUNK = 2_000


class Definitions:
    """The workflow definitions kept in the database, parsed on first use.

    Events name their definition as ``name@version#hash`` (the first 16 hex
    digits of the content hash); partnerships are pinned by the full hash.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._rows = {r.content_hash: r for r in session.exec(select(m.WorkflowDefinition)).all()}

    def by_hash(self, content_hash: str) -> Workflow | None:
        row = self._rows.get(content_hash)
        return definition_by_hash(self._session, content_hash) if row else None

    def by_label(self, label: str) -> Workflow | None:
        """The definition an event was recorded under, or ``None`` if none stored matches."""
        prefix = label.rpartition("#")[2]
        if len(prefix) < 8:
            return None
        found = [h for h in self._rows if h.startswith(prefix)]
        if len(found) != 1:
            return None
        wf = self.by_hash(found[0])
        if wf is None or label != f"{wf.name}@{wf.version}#{prefix}":
            return None
        return wf

    def all(self) -> list[Workflow]:
        return [w for h in self._rows if (w := self.by_hash(h)) is not None]


@dataclass(frozen=True)
class LogFilter:
    """Which events to list; empty tuples and ``None`` mean "any"."""

    partnerships: Sequence[str] = ()
    actors: Sequence[str] = ()
    kinds: Sequence[str] = ()
    step: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def find_partnerships(session: Session, refs: Sequence[str]) -> list[m.Partnership]:
    """Partnerships by slug (or row id); NotFound naming the first unknown one."""
    return [find(session, ref) for ref in refs]


def step_states(session: Session, ref: str, partnerships: Sequence[m.Partnership] = ()) -> set[str]:
    """The state ids that step ``ref`` (a number or an id) means in the relevant definitions."""
    defs = Definitions(session)
    if partnerships:
        workflows = [w for p in partnerships if (w := defs.by_hash(p.workflow_hash))]
    else:
        workflows = defs.all()
    states = set()
    for wf in workflows:
        step = wf.find_step(ref)
        if step is not None:
            states.add(step.id)
        elif ref in wf.states:
            states.add(ref)  # a final state, e.g. "terminated"
    if not states:
        raise NotFound(
            f"no step '{ref}' in the workflow definitions of this database",
            hint="give a step number (1-12) or id, e.g. 'reviewing'",
            field="step",
        )
    return states


def iter_events(session: Session, f: LogFilter, *, chunk: int = CHUNK) -> Iterator[m.HistoryEvent]:
    """Matching events in sequence order, fetched ``chunk`` rows at a time.

    The filters are checked (NotFound, InvalidInput) before the first event is returned.
    """
    if f.since and f.until and f.since >= f.until:
        raise InvalidInput("the start of the period must be before its end", field="since")
    E = m.HistoryEvent
    query = select(E)
    if f.partnerships:
        slugs = [p.slug for p in find_partnerships(session, f.partnerships)]
        query = query.where(col(E.partnership).in_(slugs))
    if f.actors:
        query = query.where(col(E.actor).in_(list(f.actors)))
    if f.kinds:
        query = query.where(col(E.kind).in_(list(f.kinds)))
    if f.step is not None:
        scope = find_partnerships(session, f.partnerships) if f.partnerships else ()
        states = sorted(step_states(session, f.step, scope))
        query = query.where(or_(col(E.from_state).in_(states), col(E.to_state).in_(states)))
    if f.since is not None:
        query = query.where(col(E.at) >= format_instant(f.since))
    if f.until is not None:
        query = query.where(col(E.at) < format_instant(f.until))
    query = query.order_by(col(E.seq)).execution_options(yield_per=chunk)
    return iter(session.exec(query))
