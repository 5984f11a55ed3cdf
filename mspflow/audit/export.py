"""The history in the formats auditors' tools read: CSV, JSON Lines, XES and OCEL 2.0.

Written by mspflow itself (``csv``, ``json``, ``xml.etree``), streamed from the
database in chunks.

* **CSV / JSON Lines**: one row per event with the keys of ``history --json``;
  in CSV the list and object fields (``waived``, ``evidence``, ``data``) hold
  compact JSON, and a cell a spreadsheet would run as a formula (starting with
  ``= + - @``, a tab or a carriage return) starts with a single quote instead
  (:func:`csv_cell`).
* **XES** (IEEE 1849-2016): one trace per partnership (``concept:name`` = its
  id); each event's ``concept:name`` is its *activity* (see :func:`activity`),
  with ``time:timestamp``, ``org:resource`` (the actor), ``org:role`` and
  ``lifecycle:transition`` = ``complete``, plus mspflow's own attributes
  (``seq``, ``hash``, ``prev_hash``, ``kind``, ``trigger``, ``from_state``,
  ``to_state``, ``reason``, ``waived``, ``definition``, ``state_change``).
* **OCEL 2.0 JSON**: objects for partnerships, partners, meetings, reviews,
  reports, health checks, monitoring records and schedules; each event (typed by
  its activity, as in XES) is related to its partnership and to every record
  its gate named as evidence, qualified by the criterion id.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from sqlmodel import Session, col, select

from mspflow.audit.queries import find_partnerships
from mspflow.definition.kinds import KINDS
from mspflow.errors import InvalidInput
from mspflow.history import as_dict as event_dict
from mspflow.history import format_instant
from mspflow.store import models as m

__all__ = [
    "FORMATS",
    "FORMULA_LEADS",
    "OBJECT_TYPES",
    "Exported",
    "activity",
    "csv_cell",
    "export",
    "export_file",
    "is_state_change",
]

FORMATS = ("csv", "jsonl", "xes", "ocel")
CHUNK = 2_000


@dataclass
class Exported:
    """What an export wrote: traces (partnerships), events and objects by type."""

    format: str
    cases: int = 0
    events: int = 0
    objects: dict[str, int] = field(default_factory=dict)
    path: Path | None = None


def is_state_change(e: m.HistoryEvent) -> bool:
    """Creation, onboarding and every move; not waivers, backfills or decisions."""
    return e.from_state != e.to_state


def activity(e: m.HistoryEvent) -> str:
    """An event's activity name in XES and OCEL.

    The state entered (``delivering``, ``transferred``) for an event that
    changes the partnership's state, so that the directly-follows relation of
    a trace is the path through the workflow; the kind of event (``waive``,
    ``backfill``, ``scale-up``) for one that does not.
    """
    if is_state_change(e) and e.to_state:
        return e.to_state
    return e.kind


def _events(
    session: Session, slugs: Sequence[str] | None, *, by_partnership: bool = False
) -> Iterator[m.HistoryEvent]:
    E = m.HistoryEvent
    query = select(E)
    if slugs is not None:
        query = query.where(col(E.partnership).in_(list(slugs)))
    order = (col(E.partnership), col(E.seq)) if by_partnership else (col(E.seq),)
    yield from session.exec(query.order_by(*order).execution_options(yield_per=CHUNK))


def _partnerships(session: Session, refs: Sequence[str]) -> list[m.Partnership]:
    if refs:
        return find_partnerships(session, refs)
    return list(session.exec(select(m.Partnership).order_by(col(m.Partnership.id))))


def export(
    session: Session,
    fmt: str,
    out: TextIO,
    partnerships: Sequence[str] = (),
    *,
    none: bool = False,
) -> Exported:
    """Write the history (of ``partnerships``, or all; with ``none``, of no
    partnership: an empty export) to ``out`` in ``fmt``."""
    writers: dict[str, Callable[..., Exported]] = {
        "csv": _csv,
        "jsonl": _jsonl,
        "xes": _xes,
        "ocel": _ocel,
    }
    if fmt not in writers:
        raise InvalidInput(
            f"unknown export format '{fmt}'", hint="use " + ", ".join(FORMATS), field="format"
        )
    ps = [] if none else _partnerships(session, partnerships)
    slugs = [p.slug for p in ps] if partnerships or none else None
    return writers[fmt](session, out, ps, slugs)


def export_file(
    session: Session,
    fmt: str,
    target: str | Path,
    partnerships: Sequence[str] = (),
    *,
    none: bool = False,
) -> Exported:
    """Export into ``target`` as :func:`mspflow.outfile.write_output` writes a named output.

    ``-`` is standard output; a regular file is replaced only once the whole
    export is written; a device or FIFO is written in place, never replaced; a
    symbolic link is followed.
    """
    from mspflow.outfile import write_output

    done = write_output(str(target), lambda out: export(session, fmt, out, partnerships, none=none))
    done.path = None if str(target) == "-" else Path(target)
    return done


# --------------------------------------------------------------------------- flat


_COLUMNS = (
    "seq", "partnership", "at", "actor", "role", "kind", "trigger", "from", "to", "reason",
    "waived", "evidence", "definition", "data", "prev_hash", "hash",
)  # fmt: skip


def _compact(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "" if value is None else value


#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: a text starting with ``= + - @``,
    a tab or a carriage return gets a single quote in front, as OWASP's
    CSV-injection guidance recommends (a waiver reason ``=HYPERLINK(...)`` must
    not become a live link in the auditor's spreadsheet)."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def _csv(
    session: Session, out: TextIO, ps: list[m.Partnership], slugs: list[str] | None
) -> Exported:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    done = Exported("csv")
    seen: set[str] = set()
    for e in _events(session, slugs):
        d = event_dict(e)
        writer.writerow([csv_cell(_compact(d[k])) for k in _COLUMNS])
        done.events += 1
        seen.add(e.partnership)
    done.cases = len(seen)
    return done


def _jsonl(
    session: Session, out: TextIO, ps: list[m.Partnership], slugs: list[str] | None
) -> Exported:
    done = Exported("jsonl")
    seen: set[str] = set()
    for e in _events(session, slugs):
        out.write(json.dumps(event_dict(e), ensure_ascii=False, separators=(",", ":")) + "\n")
        done.events += 1
        seen.add(e.partnership)
    done.cases = len(seen)
    return done


# --------------------------------------------------------------------------- XES

_XES_NS = "http://www.xes-standard.org/"
_EXTENSIONS = (
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
)
#: Characters XML 1.0 cannot carry (C0 controls other than tab, newline, return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _attr(parent: ET.Element, tag: str, key: str, value: Any) -> None:
    if value is None:
        return
    if tag == "boolean":
        value = "true" if value else "false"
    ET.SubElement(parent, tag, key=key, value=_clean(str(value)))


def _xes_time(at: str) -> str:
    """The stored ``...Z`` instant with an explicit offset (xs:dateTime)."""
    return at[:-1] + "+00:00" if at.endswith("Z") else at


def _xes_event(e: m.HistoryEvent) -> ET.Element:
    ev = ET.Element("event")
    _attr(ev, "string", "concept:name", activity(e))
    _attr(ev, "date", "time:timestamp", _xes_time(e.at))
    _attr(ev, "string", "org:resource", e.actor)
    _attr(ev, "string", "org:role", e.role)
    _attr(ev, "string", "lifecycle:transition", "complete")
    _attr(ev, "int", "seq", e.seq)
    _attr(ev, "string", "kind", e.kind)
    _attr(ev, "boolean", "state_change", is_state_change(e))
    _attr(ev, "string", "trigger", e.trigger)
    _attr(ev, "string", "from_state", e.from_state)
    _attr(ev, "string", "to_state", e.to_state)
    _attr(ev, "string", "reason", e.reason)
    waived = json.loads(e.waived)
    if waived:
        _attr(ev, "string", "waived", ",".join(waived))
    outcome = json.loads(e.data).get("outcome")
    _attr(ev, "string", "outcome", outcome)
    _attr(ev, "string", "definition", e.definition)
    _attr(ev, "string", "prev_hash", e.prev_hash)
    _attr(ev, "string", "hash", e.hash)
    return ev


def _xes(
    session: Session, out: TextIO, ps: list[m.Partnership], slugs: list[str] | None
) -> Exported:
    from mspflow import __version__

    by_slug = {p.slug: p for p in ps}
    parents = {p.id: p.slug for p in ps}
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(f'<log xes.version="1849-2016" xmlns="{_XES_NS}">\n')
    head = ET.Element("head")
    for name, prefix, uri in _EXTENSIONS:
        ET.SubElement(head, "extension", name=name, prefix=prefix, uri=uri)
    trace_globals = ET.SubElement(head, "global", scope="trace")
    _attr(trace_globals, "string", "concept:name", "__INVALID__")
    event_globals = ET.SubElement(head, "global", scope="event")
    _attr(event_globals, "string", "concept:name", "__INVALID__")
    _attr(event_globals, "date", "time:timestamp", "1970-01-01T00:00:00.000+00:00")
    _attr(event_globals, "string", "org:resource", "__INVALID__")
    _attr(event_globals, "string", "lifecycle:transition", "complete")
    ET.SubElement(head, "classifier", name="Activity", keys="concept:name")
    ET.SubElement(head, "classifier", name="Resource", keys="org:resource")
    _attr(head, "string", "concept:name", "mspflow partnership history")
    _attr(head, "string", "source", f"mspflow {__version__}")
    for child in head:
        _write(out, child)
    done = Exported("xes")
    trace: ET.Element | None = None
    current = None
    for e in _events(session, slugs, by_partnership=True):
        if e.partnership != current:
            if trace is not None:
                _write(out, trace)
            current = e.partnership
            trace = ET.Element("trace")
            _attr(trace, "string", "concept:name", e.partnership)
            p = by_slug.get(e.partnership)
            if p is not None:
                _attr(trace, "string", "name", p.name)
                _attr(trace, "string", "workflow", f"{p.workflow_name}@{p.workflow_version}")
                _attr(trace, "string", "state", p.state)
                _attr(trace, "string", "parent", parents.get(p.parent_id))
            done.cases += 1
        assert trace is not None
        trace.append(_xes_event(e))
        done.events += 1
    if trace is not None:
        _write(out, trace)
    out.write("</log>\n")
    return done


def _write(out: TextIO, element: ET.Element) -> None:
    ET.indent(element, space="  ", level=1)
    out.write("  " + ET.tostring(element, encoding="unicode").rstrip() + "\n")


# --------------------------------------------------------------------------- OCEL 2.0


@dataclass(frozen=True)
class _ObjectType:
    """One kind of record exported as OCEL objects (from the kinds' ``export``)."""

    name: str
    model: Any
    #: (attribute name, column, OCEL type)
    attributes: tuple[tuple[str, str, str], ...]
    #: keys under which a gate's evidence names rows of this table
    evidence_keys: tuple[str, ...]


OBJECT_TYPES: tuple[_ObjectType, ...] = tuple(
    _ObjectType(
        k.export.name, m.evidence_table(k.kind), k.export.attributes, k.export.evidence_keys
    )
    for k in KINDS.values()
    if k.export is not None
)

_PARTNERSHIP_ATTRIBUTES = (
    ("name", "string"),
    ("workflow", "string"),
    ("state", "string"),
    ("timezone", "string"),
)
_EVENT_ATTRIBUTES = (
    ("seq", "integer"),
    ("kind", "string"),
    ("actor", "string"),
    ("role", "string"),
    ("trigger", "string"),
    ("from_state", "string"),
    ("to_state", "string"),
    ("reason", "string"),
    ("waived", "string"),
    ("definition", "string"),
    ("hash", "string"),
)
_BASE_TIME = "1970-01-01T00:00:00Z"


def _ocel_value(value: Any, kind: str) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat() + "T00:00:00Z"
    if kind == "boolean":
        return bool(value)
    return value


class _Objects:
    """Every exported object, and a way to resolve what an event's evidence names."""

    def __init__(self, session: Session, ps: list[m.Partnership], *, filtered: bool) -> None:
        self.items: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {"partnership": 0}
        self.ids: set[str] = set()
        self.partner_by_name: dict[tuple[int, str], str] = {}
        #: per partnership: (when recorded, object id), oldest first
        self.recorded: dict[int, list[tuple[str, str]]] = {}
        ids = [p.id for p in ps]
        slug_of = {p.id: p.slug for p in ps}
        for p in ps:
            rels = []
            if p.parent_id in slug_of:
                rels.append(
                    {"objectId": f"partnership:{slug_of[p.parent_id]}", "qualifier": "replica of"}
                )
            self._add(
                f"partnership:{p.slug}",
                "partnership",
                [
                    ("name", p.name, "string"),
                    ("workflow", f"{p.workflow_name}@{p.workflow_version}", "string"),
                    ("state", p.state, "string"),
                    ("timezone", p.timezone, "string"),
                ],
                rels,
            )
        attendance: dict[int, list[int]] = {}
        for meeting_id, partner_id in session.exec(
            select(m.MeetingAttendance.meeting_id, m.MeetingAttendance.partner_id)
        ):
            attendance.setdefault(meeting_id, []).append(partner_id)
        for kind in OBJECT_TYPES:
            self.counts[kind.name] = 0
            query = select(kind.model).order_by(col(kind.model.id))
            if filtered:
                query = query.where(col(kind.model.partnership_id).in_(ids))
            for row in session.exec(query):
                if row.partnership_id not in slug_of:
                    continue
                rels = [
                    {
                        "objectId": f"partnership:{slug_of[row.partnership_id]}",
                        "qualifier": "of partnership",
                    }
                ]
                if kind.name == "partner":
                    self.partner_by_name[(row.partnership_id, row.name)] = f"partner:{row.id}"
                if kind.name == "meeting":
                    rels += [
                        {"objectId": f"partner:{pid}", "qualifier": "attended by"}
                        for pid in sorted(attendance.get(row.id, []))
                    ]
                    if row.schedule_id is not None:
                        rels.append(
                            {"objectId": f"schedule:{row.schedule_id}", "qualifier": "scheduled by"}
                        )
                self.recorded.setdefault(row.partnership_id, []).append(
                    (_stamp(row.recorded_at), f"{kind.name}:{row.id}")
                )
                self._add(
                    f"{kind.name}:{row.id}",
                    kind.name,
                    [(a, getattr(row, c), t) for a, c, t in kind.attributes],
                    rels,
                )
        for queue in self.recorded.values():
            queue.sort()
        for obj in self.items:  # relations to objects outside the export are dropped
            obj["relationships"] = [r for r in obj["relationships"] if r["objectId"] in self.ids]

    def _add(
        self, oid: str, otype: str, attrs: list[tuple[str, Any, str]], rels: list[dict[str, str]]
    ) -> None:
        self.items.append(
            {
                "id": oid,
                "type": otype,
                "attributes": [
                    {"name": n, "time": _BASE_TIME, "value": _ocel_value(v, t)}
                    for n, v, t in attrs
                    if v is not None
                ],
                "relationships": rels,
            }
        )
        self.ids.add(oid)
        self.counts[otype] = self.counts.get(otype, 0) + 1

    def touched(self, e: m.HistoryEvent, partnership_id: int | None) -> list[dict[str, str]]:
        """The objects an event relates to, each with a qualifier."""
        found: list[tuple[str, str]] = [(f"partnership:{e.partnership}", "partnership")]
        data = json.loads(e.data)
        if data.get("replica"):
            found.append((f"partnership:{data['replica']}", "replica"))
        if data.get("parent"):
            found.append((f"partnership:{data['parent']}", "parent"))
        if data.get("schedule_id") is not None:
            found.append((f"schedule:{data['schedule_id']}", "schedule"))
        for criterion, value in json.loads(e.evidence).items():
            if isinstance(value, dict):
                for oid in self._named(value, partnership_id):
                    found.append((oid, criterion))
        rels, seen = [], set()
        for oid, qualifier in found:
            if oid in self.ids and (oid, qualifier) not in seen:
                seen.add((oid, qualifier))
                rels.append({"objectId": oid, "qualifier": qualifier})
        return rels

    def _named(self, value: dict[str, Any], partnership_id: int | None) -> Iterator[str]:
        for key, v in value.items():
            kind = next((k for k in OBJECT_TYPES if key in k.evidence_keys), None)
            if isinstance(v, dict):
                for name, inner in v.items():
                    partner = self.partner_by_name.get((partnership_id or -1, name))
                    if partner:
                        yield partner
                    if kind is not None:
                        yield from (f"{kind.name}:{i}" for i in _ints(inner))
            elif kind is not None:
                yield from (f"{kind.name}:{i}" for i in _ints(v))


def _ints(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [i for i in value if isinstance(i, int) and not isinstance(i, bool)]
    return []


def _stamp(instant: datetime) -> str:
    """A recorded_at value in the layout of history times, so the two compare as text."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return format_instant(instant)


def _ocel(
    session: Session, out: TextIO, ps: list[m.Partnership], slugs: list[str] | None
) -> Exported:
    objects = _Objects(session, ps, filtered=slugs is not None)
    pid = {p.slug: p.id for p in ps}
    done = Exported("ocel", objects=dict(objects.counts))
    event_types: set[str] = set()
    out.write('{\n  "objects": [')
    for i, obj in enumerate(objects.items):
        out.write(("\n    " if i == 0 else ",\n    ") + json.dumps(obj, ensure_ascii=False))
    out.write('\n  ],\n  "events": [')
    seen: set[str] = set()

    def write(e: m.HistoryEvent, until: str | None) -> None:
        """Write ``e``, related also to the records kept until the next event (``until``)."""
        name = activity(e)
        event_types.add(name)
        values: dict[str, Any] = {
            "seq": e.seq,
            "kind": e.kind,
            "actor": e.actor,
            "role": e.role,
            "trigger": e.trigger,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "reason": e.reason,
            "waived": ",".join(json.loads(e.waived)) or None,
            "definition": e.definition,
            "hash": e.hash,
        }
        rels = objects.touched(e, pid.get(e.partnership))
        queue = objects.recorded.get(pid.get(e.partnership) or -1, [])
        while queue and (until is None or queue[0][0] < until):
            rels.append({"objectId": queue.pop(0)[1], "qualifier": "recorded during"})
        event = {
            "id": f"event:{e.seq}",
            "type": name,
            "time": e.at,
            "attributes": [{"name": k, "value": v} for k, v in values.items() if v is not None],
            "relationships": rels,
        }
        out.write(
            ("\n    " if done.events == 0 else ",\n    ") + json.dumps(event, ensure_ascii=False)
        )
        done.events += 1
        seen.add(e.partnership)

    # Grouped by partnership, so that each record can be tied to the event
    # whose state it was recorded in: the last one before it (or the first).
    previous: m.HistoryEvent | None = None
    for e in _events(session, slugs, by_partnership=True):
        if previous is not None:
            write(previous, e.at if e.partnership == previous.partnership else None)
        previous = e
    if previous is not None:
        write(previous, None)
    done.cases = len(seen)
    out.write("\n  ],\n")
    object_types = [
        {
            "name": "partnership",
            "attributes": [{"name": n, "type": t} for n, t in _PARTNERSHIP_ATTRIBUTES],
        },
        *(
            {"name": k.name, "attributes": [{"name": a, "type": t} for a, _c, t in k.attributes]}
            for k in OBJECT_TYPES
        ),
    ]
    types = [
        {"name": t, "attributes": [{"name": n, "type": k} for n, k in _EVENT_ATTRIBUTES]}
        for t in sorted(event_types)
    ]
    out.write('  "objectTypes": ' + json.dumps(object_types, ensure_ascii=False) + ",\n")
    out.write('  "eventTypes": ' + json.dumps(types, ensure_ascii=False) + "\n}\n")
    return done
