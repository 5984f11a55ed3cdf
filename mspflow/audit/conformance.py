"""Replaying each partnership's history against the definition it was pinned to.

The replay trusts nothing but the recorded events and the stored definition
text: each move must be a transition the definition has (source, destination,
kind, trigger and, in step 12, outcome); its gate's criteria must each be
evidenced in the event or waived by a waive event earlier in the same visit of
the step; a required reason must be there; a ``review-due`` move must be made
by the scheduler at an occurrence of a schedule that starts reviews, not
before it and only once. What the gate saw is judged from the event itself,
never from today's evidence tables, which may have changed since.

The chain's integrity is a separate question (``mspflow audit verify``): a
conforming history may still have been tampered with, and a verified one may
record moves no definition allows (written by a buggy or hostile tool).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from mspflow.audit.queries import CHUNK, Definitions, find_partnerships
from mspflow.auth import SCHEDULER
from mspflow.clock import parse_instant
from mspflow.definition.model import Transition, Workflow
from mspflow.store import models as m

__all__ = ["DEVIATION_KINDS", "Deviation", "Report", "check"]

#: Every kind of deviation, with what it means.
DEVIATION_KINDS = {
    "not-allowed": "a move, start or trigger the pinned definition does not have",
    "gate-unmet": "a gate passed while one of its criteria was neither evidenced nor waived",
    "waiver-unrecorded": "a criterion counted as waived with no waive event in that visit",
    "reason-missing": "a move that needs a reason was recorded without one",
    "not-scheduler": "an automatic move made by someone other than the scheduler",
    "off-cadence": "an automatic move not at an occurrence of a schedule that triggers it",
    "state-mismatch": "an event leaves a step the partnership was not at",
    "state-drift": "the partnership's current state is not where its history ends",
    "unknown-definition": "an event names a definition the database does not hold",
    "unknown-partnership": "events of a partnership the database does not hold",
    "no-history": "a partnership without a single event",
}


@dataclass(frozen=True)
class Deviation:
    """One way in which a partnership's history departs from its definition."""

    partnership: str
    seq: int | None
    kind: str
    message: str

    def line(self) -> str:
        where = f"event {self.seq}" if self.seq is not None else "current state"
        return f"{self.partnership} {where}: {self.kind}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "partnership": self.partnership,
            "seq": self.seq,
            "kind": self.kind,
            "message": self.message,
        }


@dataclass
class Report:
    partnerships: int = 0
    events: int = 0
    deviations: list[Deviation] = field(default_factory=list)

    @property
    def conforms(self) -> bool:
        return not self.deviations

    def as_dict(self) -> dict[str, Any]:
        return {
            "conforms": self.conforms,
            "partnerships": self.partnerships,
            "events": self.events,
            "deviations": [d.as_dict() for d in self.deviations],
        }


def check(session: Session, partnerships: Sequence[str] = ()) -> Report:
    """Replay the history of ``partnerships`` (default: all) and list every deviation."""
    defs = Definitions(session)
    if partnerships:
        rows = find_partnerships(session, partnerships)
    else:
        rows = list(session.exec(select(m.Partnership).order_by(col(m.Partnership.id))))
    by_slug = {p.slug: p for p in rows}
    report = Report(partnerships=len(rows))
    seen: set[str] = set()
    for slug, events in _grouped(session, list(by_slug) if partnerships else None):
        seen.add(slug)
        replay = _Replay(session, defs, slug, by_slug.get(slug))
        for e in events:
            report.events += 1
            replay.event(e)
        replay.finish()
        report.deviations.extend(replay.deviations)
        if slug not in by_slug:
            report.partnerships += 1
    for p in rows:
        if p.slug not in seen:
            report.deviations.append(
                Deviation(p.slug, None, "no-history", "the partnership has no recorded event")
            )
    return report


def _grouped(
    session: Session, slugs: list[str] | None
) -> Iterator[tuple[str, Iterator[m.HistoryEvent]]]:
    """Events in (partnership, seq) order, one partnership at a time, streamed."""
    E = m.HistoryEvent
    query = select(E)
    if slugs is not None:
        query = query.where(col(E.partnership).in_(slugs))
    query = query.order_by(col(E.partnership), col(E.seq)).execution_options(yield_per=CHUNK)
    rows = iter(session.exec(query))
    pending = next(rows, None)
    while pending is not None:
        slug = pending.partnership
        group: list[m.HistoryEvent] = []
        while pending is not None and pending.partnership == slug:
            group.append(pending)
            pending = next(rows, None)
        yield slug, iter(group)


class _Replay:
    """One partnership's history, event by event, against its definition."""

    def __init__(
        self, session: Session, defs: Definitions, slug: str, p: m.Partnership | None
    ) -> None:
        self.session = session
        self.defs = defs
        self.slug = slug
        self.p = p
        self.pinned = defs.by_hash(p.workflow_hash) if p is not None else None
        self.state: str | None = None
        self.last_seq: int | None = None
        self.waivers: dict[tuple[str, str], int] = {}
        self.fired: set[tuple[int, datetime]] = set()
        self.deviations: list[Deviation] = []
        self.wf: Workflow | None = self.pinned

    def flag(self, seq: int | None, kind: str, message: str) -> None:
        self.deviations.append(Deviation(self.slug, seq, kind, message))

    def label(self, state: str | None) -> str:
        if state is None:
            return "nowhere"
        if self.wf is not None and state in self.wf.states:
            return self.wf.label(state)
        return state

    def event(self, e: m.HistoryEvent) -> None:
        if self.last_seq is None and self.p is None:
            self.flag(e.seq, "unknown-partnership", "no partnership with this id exists")
        self.last_seq = e.seq
        wf = self.defs.by_label(e.definition)
        if wf is None:
            self.flag(
                e.seq,
                "unknown-definition",
                f"recorded under {e.definition}, which the database does not hold",
            )
            wf = self.pinned
        self.wf = wf
        data = _json(e.data, {})
        if e.kind in ("create", "onboard"):
            self._start(e, wf, data)
        elif self.state is None:
            self.flag(e.seq, "not-allowed", f"the history starts with a {e.kind} event")
        else:
            if e.from_state != self.state:
                self.flag(
                    e.seq,
                    "state-mismatch",
                    f"{e.kind} recorded from {self.label(e.from_state)}, "
                    f"but the partnership was at {self.label(self.state)}",
                )
            if e.from_state != e.to_state:
                if wf is not None:
                    self._move(e, wf, data)
                self.waivers = {}  # a waiver holds for one visit of a step
            elif e.kind == "waive" and data.get("gate_debt") is not True:
                step = str(data.get("step") or e.from_state)
                for c in _json(e.waived, []):
                    self.waivers[(step, c)] = e.seq
        self.state = e.to_state

    def _start(self, e: m.HistoryEvent, wf: Workflow | None, data: dict[str, Any]) -> None:
        if self.state is not None:
            self.flag(e.seq, "not-allowed", f"a second {e.kind} event for the same partnership")
            return
        if wf is None or e.to_state is None:
            return
        if e.kind == "create":
            allowed: tuple[str, ...] = (wf.initial,)
        else:
            allowed = wf.entry_steps + (wf.scale_up_entry if data.get("parent") else ())
        if e.to_state not in allowed:
            self.flag(
                e.seq,
                "not-allowed",
                f"{e.kind} at {self.label(e.to_state)}, which {wf.name} {wf.version} "
                "does not allow as a starting step",
            )

    def _move(self, e: m.HistoryEvent, wf: Workflow, data: dict[str, Any]) -> None:
        source, dest = e.from_state or "", e.to_state or ""
        candidates = [
            t
            for t in wf.transitions
            if t.source == source and t.dest == dest and t.kind == e.kind
            and (t.outcome is None or t.outcome == data.get("outcome"))
        ]  # fmt: skip
        if not candidates:
            outcome = f" with outcome {data['outcome']}" if data.get("outcome") else ""
            self.flag(
                e.seq,
                "not-allowed",
                f"{e.kind} from {self.label(source)} to {self.label(dest)}{outcome} "
                f"is not a transition of {wf.name} {wf.version}",
            )
            return
        t = next((c for c in candidates if c.trigger == e.trigger), None)
        if t is None:
            t = candidates[0]
            self.flag(
                e.seq,
                "not-allowed",
                f"trigger {e.trigger} is not the definition's {t.trigger} "
                f"for {e.kind} to {self.label(dest)}",
            )
        if t.reason_required and not (e.reason and e.reason.strip()):
            self.flag(
                e.seq,
                "reason-missing",
                f"{e.kind} to {self.label(dest)} needs a reason; none given",
            )
        self._gate(e, wf, t)
        if e.kind == "review-due":
            self._automatic(e, wf, data)

    def _gate(self, e: m.HistoryEvent, wf: Workflow, t: Transition) -> None:
        evidence = _json(e.evidence, {})
        waived = set(_json(e.waived, []))
        step = wf.find_step(t.source)
        for cid in t.gate:
            c = step.criterion(cid) if step else None
            task = f" (task {c.task})" if c else ""
            where = f"step {step.number}" if step else self.label(t.source)
            if evidence.get(cid):
                continue
            if cid in waived:
                if (t.source, cid) not in self.waivers:
                    self.flag(
                        e.seq,
                        "waiver-unrecorded",
                        f"criterion {cid}{task} counted as waived, but no waiver was recorded "
                        f"during this visit of {where}",
                    )
                continue
            self.flag(
                e.seq,
                "gate-unmet",
                f"left {where} with criterion {cid}{task} neither evidenced nor waived",
            )

    def _automatic(self, e: m.HistoryEvent, wf: Workflow, data: dict[str, Any]) -> None:
        if e.actor != SCHEDULER.name or e.role != SCHEDULER.role:
            self.flag(
                e.seq,
                "not-scheduler",
                f"review-due made by {e.actor} ({e.role}); only the scheduler makes it",
            )
        problem = self._cadence(e, wf, data)
        if problem:
            self.flag(e.seq, "off-cadence", problem)

    def _cadence(self, e: m.HistoryEvent, wf: Workflow, data: dict[str, Any]) -> str | None:
        """Why a review-due move was not at a due occurrence, or ``None`` if it was."""
        from mspflow.scheduler.times import occurrences

        sid, text = data.get("schedule_id"), data.get("occurrence")
        if not isinstance(sid, int) or not isinstance(text, str):
            return "the move names no schedule occurrence (schedule_id, occurrence)"
        row = self.session.get(m.Schedule, sid)
        if row is None or self.p is None or row.partnership_id != self.p.id:
            return f"schedule #{sid} is not a schedule of this partnership"
        triggers = [
            a
            for a in wf.auto_triggers
            if a.kind == e.kind and e.from_state in a.sources and a.dest == e.to_state
        ]
        if not any(row.kind in a.schedules for a in triggers):
            return f"schedule #{sid} is a {row.kind} schedule, which does not start reviews"
        if data.get("schedule") not in (None, row.kind):
            return f"the move names a {data['schedule']} schedule, but #{sid} is a {row.kind} one"
        try:
            due = parse_instant(text)
        except ValueError:
            return f"occurrence '{text}' is not an instant"
        expected = occurrences(row, after=due - timedelta(seconds=1), until=due)
        if due not in expected:
            return (
                f"{text} is not an occurrence of schedule #{sid} ({row.kind}, {row.cadence} "
                f"from {row.starts_on} at {row.local_time} {row.timezone})"
            )
        if parse_instant(e.at) < due:
            return f"fired at {e.at}, before its occurrence {text}"
        if (sid, due) in self.fired:
            return f"occurrence {text} of schedule #{sid} fired a second time"
        self.fired.add((sid, due))
        return None

    def finish(self) -> None:
        if self.p is not None and self.state is not None and self.p.state != self.state:
            self.flag(
                None,
                "state-drift",
                f"the partnership is at {self.label(self.p.state)}, but its history "
                f"(last event {self.last_seq}) ends at {self.label(self.state)}",
            )


def _json(text: str, default: Any) -> Any:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return default
    return value if isinstance(value, type(default)) else default
