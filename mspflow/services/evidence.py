"""Recording evidence: one record at a time, or a bulk file of them.

The kinds and their fields are declared once (:mod:`mspflow.definition.kinds`);
a value is validated the same way wherever it comes from (a command line, a
form, a bulk file): each passes the rule of :mod:`mspflow.inputs` its type
names, and a wrong one raises :class:`~mspflow.errors.InvalidInput` naming the
field.

Recording happens in two phases. :class:`_Batch` checks rows against what is
stored (partners, components, the time frame, what is already recorded) and
against the rows before them, and turns each into converted values; nothing is
written. :func:`_write` then stores the checked rows in one transaction with a
handful of statements. A bulk import runs the first phase before its write
transaction opens, so the database's write lock is held only for the writes.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mspflow import inputs
from mspflow.definition.kinds import RECORD_KEY, EvidenceKind, FieldSpec, recordable
from mspflow.definition.model import CADENCE_DAYS
from mspflow.errors import (
    ConcurrentChange,
    DefinitionError,
    InvalidInput,
    MspflowError,
    NotFound,
    Problem,
)
from mspflow.inputs import shown
from mspflow.scheduler.times import check_start, midterm_date
from mspflow.services.readmodels import ImportResult, RecordResult
from mspflow.store import models as m
from mspflow.store.definitions import definition_for
from mspflow.store.lookup import find

if TYPE_CHECKING:
    from mspflow.services.context import Context
    from mspflow.services.partnerships import Partnerships

__all__ = ["RECORDS", "RECORD_KEY", "Evidence", "sdg_targets"]

#: A bulk file larger than this is refused (split it): about a million short rows.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Problems listed for one bulk file; the rest are counted.
MAX_PROBLEMS = 100
#: Values in one list field (a meeting's partners present, a component's objectives).
MAX_ITEMS = 1_000
#: Reminder lead days of one schedule.
MAX_LEAD_DAYS = 10

#: The kinds recorded with ``mspflow record`` and bulk import, from the registry.
RECORDS: Mapping[str, EvidenceKind] = MappingProxyType({k.kind: k for k in recordable()})


# --------------------------------------------------------------------------- SDG targets


@cache
def sdg_targets() -> frozenset[str]:
    """The 169 SDG target codes ("6.1", "6.a"), from the Open SDG data shipped in mspflow."""
    import yaml

    path = Path(__file__).parent.parent / "data" / "sdg_targets.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return frozenset(k.removesuffix("-title").replace("-", ".") for k in data)


@cache
def sdg_indicators() -> Mapping[str, str]:
    """The SDG indicator codes ("6.1.1", "6.a.1") with their titles, from the Open SDG
    data shipped in mspflow."""
    import yaml

    path = Path(__file__).parent.parent / "data" / "sdg_indicators.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return MappingProxyType(
        {k.removesuffix("-title").replace("-", "."): str(v) for k, v in data.items()}
    )


def _indicator_code(value: str, label: str) -> str:
    code = value.strip().lower().replace("-", ".").removeprefix("sdg").strip(" .")
    if code not in sdg_indicators():
        raise _bad(
            label,
            f"{shown(value)} is not an SDG indicator code",
            f"use goal.target.indicator as in 6.1.1; there are {len(sdg_indicators())}",
        )
    return code


def _sdg_code(value: str, label: str) -> str:
    code = value.strip().lower().replace("-", ".").removeprefix("sdg").strip(" .")
    if code not in sdg_targets():
        raise _bad(
            label,
            f"{shown(value)} is not an SDG target code",
            f"use goal.target as in 6.1 or 6.a; there are {len(sdg_targets())}",
        )
    return code


#: Every field name of every kind: the columns a bulk CSV file may have.
_FIELD_NAMES = frozenset(f.name for r in RECORDS.values() for f in r.fields)


# --------------------------------------------------------------------------- checking


def _bad(label: str, message: str, hint: str | None = None) -> InvalidInput:
    return InvalidInput(f"{label}: {message}", hint=hint, field=label)


def _absent(raw: Any) -> bool:
    """None, a blank string or an empty list: the field was not given."""
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    return isinstance(raw, list | tuple) and not raw


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_TRUE = ("true", "1", "yes", "y")
_FALSE = ("false", "0", "no", "n")


def _as_text(raw: Any, label: str) -> str:
    """A scalar from the command line, a CSV cell or a YAML value, as text."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, datetime):
        return raw.isoformat(sep=" ")
    if isinstance(raw, date | int):
        return str(raw)
    if isinstance(raw, Mapping):
        raise _bad(label, "holds a mapping where one value is expected", "write a single value")
    if isinstance(raw, list | tuple):
        raise _bad(label, "holds a list where one value is expected", "write a single value")
    raise _bad(label, f"holds {shown(raw)}, which is not a plain value")


def _as_date(raw: Any, label: str) -> date:
    if isinstance(raw, datetime):
        raise _bad(label, f"{shown(raw)} is a date and time", "write the date alone, YYYY-MM-DD")
    if not isinstance(raw, date):
        value = _as_text(raw, label).strip()
        try:
            if not _DATE.fullmatch(value):
                raise ValueError
            raw = date.fromisoformat(value)
        except ValueError:
            raise _bad(label, f"{shown(value)} is not a date", "write it as YYYY-MM-DD") from None
    return inputs.in_date_range(raw, field=label)


def _as_bool(raw: Any, label: str) -> bool:
    if isinstance(raw, bool):
        return raw
    word = _as_text(raw, label).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _bad(label, f"{shown(word)} is not true or false", "write true or false")


def _as_time(raw: Any, label: str) -> str:
    value = _as_text(raw, label).strip()
    match = _TIME.fullmatch(value)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise _bad(label, f"{shown(value)} is not a time of day", "write it as HH:MM, e.g. 09:00")
    return f"{int(match[1]):02d}:{match[2]}"


def _as_days(raw: Any, label: str) -> str:
    """Reminder lead days, ``30,7,1``: day counts, each within :data:`inputs.MAX_DAYS`."""
    value = _as_text(raw, label)
    parts = [x.strip() for x in value.split(",")]
    if not all(parts):
        raise _bad(label, f"{shown(value)} has an empty item", "write whole days, e.g. 7,1")
    if len(parts) > MAX_LEAD_DAYS:
        raise _bad(label, f"names {len(parts)} reminders; at most {MAX_LEAD_DAYS} are kept")
    days = [inputs.day_count(x, field=label) for x in parts]
    return ",".join(str(d) for d in dict.fromkeys(days))


@dataclass
class _Ref:
    """A row a record points at: stored (``id``), or made earlier in the same batch (``row``)."""

    id: int | None = None
    row: int | None = None

    @property
    def key(self) -> tuple[str, int]:
        return ("id", self.id) if self.id is not None else ("row", self.row or 0)


@dataclass
class _Row:
    """One checked record, its values converted, ready to be written."""

    index: int
    line: int
    spec: EvidenceKind
    values: dict[str, Any]
    lead: _Ref | None = None  # leadership-agreement: the lead agreed to


#: Rows a record may point at by name (or by ``#id``), and the column holding the name.
_TARGETS: dict[str, tuple[type[Any], str]] = {
    "partner": (m.Partner, "name"),
    "component": (m.Component, "name"),
    "objective": (m.Objective, "text"),
    "indicator": (m.SdgIndicator, "code"),
    "milestone": (m.Milestone, "name"),
}


class _Batch:
    """Checks records for one partnership against what is stored and against the
    records checked before them (a partner added on one line, named on the next)."""

    def __init__(self, s: Session, now: datetime, p: m.Partnership, *, explicit: bool) -> None:
        self.slug = p.slug
        self.timezone = p.timezone
        #: Values given one by one (a command line, a form): one given empty is a
        #: mistake. In a file a blank cell means "not given".
        self.explicit = explicit
        self.wf = definition_for(s, p)
        if self.wf.is_final(p.state):
            raise InvalidInput(
                f"partnership {p.slug} is closed; its record is final", field="partnership"
            )
        self.today = _today(now, p)
        self.names: dict[str, dict[str, _Ref]] = {}
        self.ids: dict[str, set[int]] = {}
        for what, (model, column) in _TARGETS.items():
            names: dict[str, _Ref] = {}
            ids: set[int] = set()
            for rid, name in s.exec(
                select(model.id, getattr(model, column))
                .where(model.partnership_id == p.id)
                .order_by(model.id)
            ):
                names.setdefault(name, _Ref(id=rid))
                ids.add(rid)
            self.names[what], self.ids[what] = names, ids
        self.sdg = set(s.exec(select(m.SdgTarget.code).where(m.SdgTarget.partnership_id == p.id)))
        self.component_leads = {
            (("id", c), ("id", q))
            for c, q in s.exec(
                select(m.ComponentLead.component_id, m.ComponentLead.partner_id).where(
                    m.ComponentLead.partnership_id == p.id
                )
            )
        }
        scope = s.get(m.Scope, p.id)
        self.scope = (scope.start_date, scope.end_date) if scope else (None, None)
        lead = s.exec(
            select(m.OverallLead.id)
            .where(m.OverallLead.partnership_id == p.id)
            .order_by(col(m.OverallLead.id).desc())
        ).first()
        self.lead = _Ref(id=lead) if lead is not None else None
        self.rows: list[_Row] = []
        #: What the person recording should know, though nothing is wrong (a cadence
        #: the workflow does not suggest).
        self.notes: list[str] = []

    @staticmethod
    def label(f: FieldSpec) -> str:
        return f.name

    # -- one record ------------------------------------------------------------
    def check(self, kind: str, values: Mapping[str, Any], line: int = 0) -> list[MspflowError]:
        """Check one record; keep it (and return no problem) or return every problem."""
        spec = RECORDS.get(kind)
        if spec is None:
            return [
                InvalidInput(
                    f"unknown kind of record {shown(kind)}",
                    hint="kinds: " + ", ".join(RECORDS),
                    field=RECORD_KEY,
                )
            ]
        errors: list[MspflowError] = []
        known = {f.name for f in spec.fields}
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            errors.append(
                InvalidInput(
                    f"{kind}: unknown field(s) {', '.join(shown(k) for k in unknown)}",
                    hint="fields: " + ", ".join(f.name for f in spec.fields),
                    field=unknown[0],
                )
            )
        converted: dict[str, Any] = {}
        for f in spec.fields:
            raw = values.get(f.name)
            if self.explicit and isinstance(raw, str) and not raw.strip() and not f.required:
                # given on the command line, but empty: a mistake, not "leave it out"
                errors.append(
                    InvalidInput(
                        f"{kind}: {self.label(f)} is empty",
                        hint="give a value, or leave it out",
                        field=f.name,
                    )
                )
                continue
            if _absent(raw):
                if f.name == "on":
                    converted["on"] = self.today
                elif f.required:
                    errors.append(
                        InvalidInput(
                            f"{kind}: {self.label(f)} is required",
                            hint=f.help or None,
                            field=f.name,
                        )
                    )
                continue
            try:
                converted[f.name] = self._convert(f, raw)
            except MspflowError as exc:
                errors.append(_named(exc, kind, f.name))
        if errors:
            return errors
        row = _Row(len(self.rows), line, spec, converted)
        try:
            self._rules(row)
        except MspflowError as exc:
            return [_named(exc, kind, exc.field)]
        self.rows.append(row)
        return []

    def _convert(self, f: FieldSpec, raw: Any) -> Any:
        label = self.label(f)
        if not f.multiple:
            return self._one(f, raw, label)
        if isinstance(raw, list | tuple):
            items = list(raw)
        elif isinstance(raw, str):
            items = [x for x in raw.split(";") if x.strip()]
        else:
            items = [raw]
        if len(items) > MAX_ITEMS:
            raise _bad(label, f"lists {len(items):,} values; at most {MAX_ITEMS:,} are kept")
        if any(_absent(item) for item in items):
            raise _bad(label, "has an empty item", "leave it out")
        return [self._one(f, item, label) for item in items]

    def _one(self, f: FieldSpec, raw: Any, label: str) -> Any:
        t = f.type
        if t == "date":
            return _as_date(raw, label)
        if t == "bool":
            return _as_bool(raw, label)
        if t == "number":
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raw = _as_text(raw, label)
            return inputs.number(raw, field=label, limit=f.limit or 1e15)
        if t == "days":
            return inputs.day_count(
                raw if isinstance(raw, int) else _as_text(raw, label), field=label
            )
        value = _as_text(raw, label)
        if t == "text":
            return inputs.text(value, field=label, limit=f.limit or inputs.TEXT_MAX).strip()
        if t == "email":
            return inputs.email(value, field=label)
        if t == "day-list":
            return _as_days(value, label)
        if t == "zone":
            return inputs.zone(value, field=label)
        if t == "time":
            return _as_time(value, label)
        if t == "indicator":  # named by its code, written as the partnership wrote it or not
            value = _indicator_code(inputs.line(value, field=label), label)
        if t in _TARGETS:  # an objective is named by its text, which may be long
            limit = inputs.TEXT_MAX if t == "objective" else inputs.NAME_MAX
            return self._target(t, inputs.line(value, field=label, limit=limit), label)
        value = inputs.line(value, field=label, limit=f.limit or inputs.NAME_MAX)
        if t == "line":
            return value
        if t == "choice":
            if value not in f.choices:
                raise _bad(label, f"{shown(value)} is not one of: {', '.join(f.choices)}")
            return value
        if t == "sdg":
            return _sdg_code(value, label)
        if t == "sdg-indicator":
            return _indicator_code(value, label)
        raise AssertionError(t)

    def _target(self, what: str, name: str, label: str) -> _Ref:
        found = self.names[what].get(name)
        if found is None and re.fullmatch(r"#?[0-9]{1,18}", name):
            rid = int(name.lstrip("#"))
            if rid in self.ids[what]:
                found = _Ref(id=rid)
        if found is None:
            raise NotFound(
                f"partnership {self.slug} has no {what} {shown(name)}",
                hint="give its name or #id, as the partnership lists them",
                field=label,
            )
        return found

    # -- rules that read more than one field, or what came before ----------------
    def _rules(self, row: _Row) -> None:
        kind, v = row.spec.kind, row.values
        here = _Ref(row=row.index)
        if kind == "sdg":
            if v["code"] in self.sdg:
                raise InvalidInput(
                    f"SDG target {v['code']} is already linked to {self.slug}", field="code"
                )
            self.sdg.add(v["code"])
        elif kind in ("partner", "component"):
            if v["name"] in self.names[kind]:
                raise InvalidInput(
                    f"{self.slug} already has a {kind} {shown(v['name'])}",
                    hint="update that partner instead" if kind == "partner" else None,
                    field="name",
                )
            self.names[kind][v["name"]] = here
        elif kind == "objective":
            self.names["objective"].setdefault(v["text"], here)
        elif kind == "indicator":
            if v["code"] in self.names["indicator"]:
                raise InvalidInput(
                    f"{self.slug} already tracks SDG indicator {v['code']}", field="code"
                )
            if v["target"] == v["baseline"]:
                raise InvalidInput(
                    f"indicator {v['code']}: the target equals the baseline",
                    hint="give the value the partnership aims to reach",
                    field="target",
                )
            self.names["indicator"][v["code"]] = here
        elif kind == "milestone":
            if v["name"] in self.names["milestone"]:
                raise InvalidInput(
                    f"{self.slug} already has a milestone {shown(v['name'])}",
                    hint="update that milestone instead",
                    field="name",
                )
            self.names["milestone"][v["name"]] = here
        elif kind == "component-lead":
            pair = (v["component"].key, v["partner"].key)
            if pair in self.component_leads:
                raise InvalidInput(
                    f"that partner already leads that component of {self.slug}", field="partner"
                )
            self.component_leads.add(pair)
        elif kind == "scope":
            start = v.get("start", self.scope[0])
            end = v.get("end", self.scope[1])
            if start and end and end <= start:
                raise InvalidInput(
                    f"the time frame of {self.slug}: end {end} is not after start {start}",
                    hint="the time frame needs an end after its start",
                    field="end" if "end" in v else "start",
                )
            self.scope = (start, end)
        elif kind == "activity":
            if v.get("start") and v.get("end") and v["end"] < v["start"]:
                raise InvalidInput(
                    f"{shown(v['name'])}: end {v['end']} is before start {v['start']}",
                    field="end",
                )
        elif kind == "leadership":
            self.lead = here
        elif kind == "leadership-agreement":
            if self.lead is None:
                raise InvalidInput(
                    f"partnership {self.slug} has no overall lead to agree to",
                    hint="record the overall lead (leadership) first",
                    field="partner",
                )
            row.lead = self.lead
        elif kind == "schedule":
            self._schedule(v)
        elif kind == "meeting":
            v["present"] = list({r.key: r for r in v.get("present", [])}.values())
        elif kind == "attestation" and self.wf.task(v["task"]) is None:
            raise InvalidInput(
                f"there is no task {shown(v['task'])} in {self.wf.name}",
                hint="the workflow definition lists its tasks",
                field="task",
            )

    def _cadence(self, kind: Any, cadence: str) -> None:
        """Cadences are floors: any one at least as frequent as the kind's minimum (where
        the definition sets one) is accepted; one the definition does not suggest gets a
        note. A one-off (``once``) only where the kind offers it."""
        regular = [c for c in CADENCE_DAYS if c != "once"]
        if cadence not in regular and cadence not in kind.cadences:
            raise InvalidInput(
                f"{shown(cadence)} is not a cadence",
                hint=f"use one of: {', '.join(regular)}",
                field="cadence",
            )
        if cadence not in kind.cadences and kind.derived is not None:
            raise InvalidInput(
                f"the {kind.name.lower()} happens {', '.join(kind.cadences)}; "
                f"{shown(cadence)} is not its cadence",
                field="cadence",
            )
        name = kind.name.lower()
        if kind.minimum and CADENCE_DAYS[cadence] > CADENCE_DAYS[kind.minimum]:
            faster = [c for c in regular if CADENCE_DAYS[c] <= CADENCE_DAYS[kind.minimum]]
            raise InvalidInput(
                f"a {cadence} {name} is less frequent than {kind.minimum}, the minimum "
                f"of task {kind.task}",
                hint=f"use {kind.minimum} or more often: {', '.join(faster)}",
                field="cadence",
            )
        if cadence not in kind.cadences:
            self.notes.append(
                f"the workflow suggests a {name} {' or '.join(kind.cadences)} "
                f"(task {kind.task}); {cadence} is kept as agreed"
            )

    def _schedule(self, v: dict[str, Any]) -> None:
        kind = self.wf.schedule_kind(v["kind"])
        if kind is None:
            raise InvalidInput(
                f"unknown schedule kind {shown(v['kind'])}",
                hint="kinds: " + ", ".join(k.id for k in self.wf.schedule_kinds),
                field="kind",
            )
        cadence = v.setdefault("cadence", kind.default)
        if cadence is None:
            raise InvalidInput(
                f"cadence is required for {kind.id}",
                hint=f"use one of: {', '.join(kind.cadences)}",
                field="cadence",
            )
        self._cadence(kind, cadence)
        if kind.derived == "midterm":
            start, end = self.scope
            if not (start and end):
                raise InvalidInput(
                    f"the {kind.name.lower()} of {self.slug} is derived from the time frame, "
                    "which is not recorded",
                    hint="record the scope's start and end first",
                    field="kind",
                )
            v["start"] = midterm_date(start, end)
        elif "start" not in v:
            raise InvalidInput(
                f"start is required for {kind.id}",
                hint="give the date of the first occurrence, YYYY-MM-DD",
                field="start",
            )
        try:
            check_start(cadence, v["start"])
        except InvalidInput as exc:
            raise InvalidInput(exc.message, hint=exc.hint, field="start") from None
        v.setdefault("timezone", self.timezone)


def _named(exc: MspflowError, kind: str, name: str | None) -> MspflowError:
    """``exc`` prefixed with the kind of record, and naming the field ``name``."""
    if exc.message.startswith(f"{kind}:"):
        exc.field = name
        return exc
    out = type(exc)(f"{kind}: {exc.message}", hint=exc.hint, field=name)
    return out


def _today(now: datetime, p: m.Partnership) -> date:
    """Today in the partnership's time zone, by the injected clock."""
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(p.timezone)).date()


# --------------------------------------------------------------------------- writing


#: Kinds whose rows are written as they are (no schedule to replace, no links to add).
_PLAIN_KINDS = frozenset(RECORDS) - {"schedule", "component", "meeting"}


def _write(
    s: Session,
    service: Partnerships,
    actor: str,
    p: m.Partnership,
    rows: Sequence[_Row],
    *,
    bulk: bool = False,
) -> list[Any]:
    """Store checked ``rows`` (in order) in the open transaction; the stored rows.

    With ``bulk``, rows of plain kinds that no later row points at are inserted
    with one executemany per table at the end (and returned as None): a large
    import then holds the write lock for seconds, not minutes.
    """
    slug, now = p.slug, service.ctx.now()
    stamp = {"recorded_by": actor, "recorded_at": now}
    made: dict[int, Any] = {}
    later: list[Callable[[], None]] = []
    pointed_at = {
        ref.row
        for row in rows
        for value in (*row.values.values(), row.lead)
        for ref in (value if isinstance(value, list) else [value])
        if isinstance(ref, _Ref) and ref.row is not None
    }
    plain: dict[type[Any], list[dict[str, Any]]] = {}

    def resolve(ref: _Ref) -> int:
        if ref.id is not None:
            return ref.id
        target = made[ref.row or 0]
        if target.id is None:
            s.flush()
        return int(target.id)

    active: dict[str, m.Schedule] = {
        row.kind: row
        for row in s.exec(
            select(m.Schedule).where(
                m.Schedule.partnership_id == p.id, col(m.Schedule.active).is_(True)
            )
        )
    }

    def activate(schedule: m.Schedule) -> None:
        """One active schedule per kind: a new one replaces the old (kept, inactive)."""
        old = active.get(schedule.kind)
        if old is not None and old is not schedule:
            old.active = False
            s.add(old)
        active[schedule.kind] = schedule

    def derive_midterm(scope: m.Scope) -> None:
        """Keep a scheduled midterm review (task 9.1) halfway through the time frame
        (task 2.3). A midterm review is the partners' choice (line 1197): one is kept
        in step with the scope, never created by recording it."""
        assert scope.start_date and scope.end_date
        middle = midterm_date(scope.start_date, scope.end_date)
        for kind in definition_for(s, p).schedule_kinds:
            current = active.get(kind.id)
            if kind.derived != "midterm" or current is None or current.starts_on == middle:
                continue
            fresh = m.Schedule(
                partnership_id=p.id,
                kind=kind.id,
                cadence=kind.default or "once",
                starts_on=middle,
                local_time=current.local_time,
                timezone=current.timezone,
                lead_days=current.lead_days,
                grace_days=current.grace_days,
                **stamp,
            )
            s.add(fresh)
            activate(fresh)

    try:
        for row in rows:
            spec, v = row.spec, row.values
            columns = {
                f.attr: resolve(v[f.name]) if isinstance(v[f.name], _Ref) else v[f.name]
                for f in spec.fields
                if f.name in v and f.attr != "-"
            }
            table: Any = m.evidence_table(spec.kind)
            if spec.single:
                obj = s.get(table, p.id) or table(partnership_id=p.id, **stamp)
                for name, value in columns.items():
                    setattr(obj, name, value)
                obj.recorded_by, obj.recorded_at = actor, now
                s.add(obj)
                if spec.kind == "scope" and obj.start_date and obj.end_date:
                    derive_midterm(obj)
            else:
                if row.lead is not None:
                    columns["lead_id"] = resolve(row.lead)
                if bulk and spec.kind in _PLAIN_KINDS and row.index not in pointed_at:
                    # columns left out take the column's default, as through the ORM
                    plain.setdefault(table, []).append({"partnership_id": p.id, **stamp, **columns})
                    made[row.index] = None
                    continue
                obj = table(partnership_id=p.id, **stamp, **columns)
                s.add(obj)
                if spec.kind == "schedule":
                    activate(obj)
                elif spec.kind == "component" and v.get("objective"):
                    later.append(_links(s, obj, v["objective"], resolve, objectives=True))
                elif spec.kind == "meeting" and v.get("present"):
                    later.append(_links(s, obj, v["present"], resolve, objectives=False))
            made[row.index] = obj
        s.flush()
        for link in later:
            link()
        s.flush()
        for model, values in plain.items():
            s.execute(insert(model), values)
    except IntegrityError:
        what = rows[0].spec.kind if len(rows) == 1 else "a record"
        raise InvalidInput(
            f"{what}: already recorded for {slug} (written meanwhile by someone else)",
            hint="nothing was written; the partnership lists what is recorded",
        ) from None
    service.touch(s, p)
    return [made[row.index] for row in rows]


def _links(
    s: Session, obj: Any, refs: list[_Ref], resolve: Callable[[_Ref], int], *, objectives: bool
) -> Callable[[], None]:
    """Link ``obj`` (a component, a meeting) to objectives or partners once it has an id."""

    def link() -> None:
        for ref in refs:
            if objectives:
                s.add(m.ComponentObjective(component_id=obj.id, objective_id=resolve(ref)))
            else:
                s.add(m.MeetingAttendance(meeting_id=obj.id, partner_id=resolve(ref)))

    return link


# --------------------------------------------------------------------------- bulk import


@dataclass
class _Raw:
    """One row of a bulk file as read: the line it starts on, its values by field name.

    A problem is reported at the row's line and names the field (the CSV column
    or YAML key) it is about."""

    line: int
    values: dict[str, Any]


def _decode(data: bytes, name: str) -> str:
    """UTF-8 text, with or without a byte-order mark; anything else is refused with its line."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if data.startswith(bom):
            raise DefinitionError(
                [Problem(name, 1, f"the file is {encoding} text; save it as UTF-8")]
            )
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DefinitionError(
            [
                Problem(
                    name,
                    line,
                    f"byte 0x{data[exc.start]:02x} (column {column}) is not UTF-8 text; "
                    "save the file as UTF-8",
                )
            ]
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DefinitionError(
            [
                Problem(
                    name, text.count("\n", 0, nul) + 1, "the file holds a NUL character; remove it"
                )
            ]
        )
    return text


def _read_rows(path: Path) -> list[_Raw]:
    """Rows of a YAML list or a CSV file, each with its line; refused whole if unreadable."""
    name = str(path)
    try:
        with path.open("rb") as stream:  # read at most the bound: /dev/zero never ends
            data = stream.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise DefinitionError(
                [
                    Problem(
                        name,
                        0,
                        f"the file is larger than {MAX_FILE_BYTES:,} bytes, the most read "
                        "at once; split it",
                    )
                ]
            )
    except OSError as exc:
        raise DefinitionError(
            [Problem(name, 0, f"cannot read the file: {exc.strerror or exc}")]
        ) from None
    text = _decode(data, name)
    rows = _csv_rows(text, name) if path.suffix.lower() == ".csv" else _yaml_rows(text, name)
    if not rows:
        raise DefinitionError(
            [
                Problem(
                    name,
                    1,
                    "the file holds no records; write one per row "
                    f"('{RECORD_KEY}' names its kind: profile, partner, meeting ...)",
                )
            ]
        )
    return rows


def _csv_rows(text: str, name: str) -> list[_Raw]:
    problems: list[Problem] = []
    rows: list[_Raw] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] | None = next(reader, None)
        while header is not None and not any(c.strip() for c in header):
            header = next(reader, None)  # blank lines before the heading
        if header is None:
            return []
        heading_line = reader.line_num
        columns = [c.strip() for c in header]
        for i, column in enumerate(columns, 1):
            if not column:
                problems.append(
                    Problem(name, heading_line, f"column {i} has no heading; name or remove it")
                )
            elif columns.index(column) != i - 1:
                problems.append(
                    Problem(name, heading_line, f"column {i} {shown(column)} appears twice")
                )
            elif column not in _FIELD_NAMES | {RECORD_KEY, "kind"}:
                problems.append(
                    Problem(
                        name,
                        heading_line,
                        f"column {i} {shown(column)} is not a field of any kind of record; "
                        "remove it or correct its heading",
                    )
                )
        if RECORD_KEY not in columns and "kind" not in columns:
            problems.append(
                Problem(
                    name,
                    heading_line,
                    f"no '{RECORD_KEY}' column naming each row's kind of record; add one",
                )
            )
        if problems:
            raise DefinitionError(problems)
        last = reader.line_num
        for cells in reader:
            line, last = last + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            extra = [i for i in range(len(columns), len(cells)) if cells[i].strip()]
            if extra:
                problems.append(
                    Problem(
                        name,
                        line,
                        f"column {extra[0] + 1} holds {shown(cells[extra[0]])} but has no "
                        "heading; add a heading or remove the value",
                    )
                )
                continue
            values = {c: cell for c, cell in zip(columns, cells, strict=False) if cell.strip()}
            rows.append(_Raw(line, values))
    except csv.Error as exc:
        problems.append(
            Problem(
                name,
                reader.line_num,
                f"CSV: {exc}; a cell holds at most {inputs.TEXT_MAX:,} characters",
            )
        )
    if problems:
        raise DefinitionError(problems)
    return rows


def _yaml_rows(text: str, name: str) -> list[_Raw]:
    from mspflow.definition.yamlsafe import LDict, LList, load_yaml

    data, problems = load_yaml(text, name, plain=True, max_scalar=inputs.TEXT_MAX)
    if problems:
        raise DefinitionError(problems)
    if data is None:
        return []
    if not isinstance(data, LList):
        raise DefinitionError(
            [
                Problem(
                    name,
                    getattr(data, "line", 1),
                    f"expected a list of records, each a mapping with a '{RECORD_KEY}' key",
                )
            ]
        )
    rows: list[_Raw] = []
    for i, item in enumerate(data):
        if not isinstance(item, LDict):
            problems.append(
                Problem(
                    name,
                    data.line_of(i),
                    f"{shown(item)} is not a record; write a mapping with a '{RECORD_KEY}' key",
                )
            )
            continue
        values = {k: v for k, v in item.items() if v is not None}  # null: not given
        rows.append(_Raw(data.line_of(i), values))
    if problems:
        raise DefinitionError(problems)
    return rows


def _kind_of(values: dict[str, Any]) -> str:
    """The row's kind of record, taken out of ``values``.

    ``record`` names it; rows of older files name it with ``kind``, which is
    read so wherever the kind of record has no field called ``kind`` itself.
    """
    if RECORD_KEY in values:
        kind = values.pop(RECORD_KEY)
        key = RECORD_KEY
    elif "kind" in values:
        kind = values.pop("kind")
        key = "kind"
        spec = RECORDS.get(kind.strip()) if isinstance(kind, str) else None
        if spec is not None and any(f.name == "kind" for f in spec.fields):
            raise InvalidInput(
                f"'kind' names the kind of record here, but {spec.kind} records have "
                "a field 'kind' of their own",
                hint=f"name the kind of record with '{RECORD_KEY}: {spec.kind}'",
                field="kind",
            )
    else:
        raise InvalidInput(
            "the row does not name its kind of record",
            hint=f"add '{RECORD_KEY}: KIND', e.g. {RECORD_KEY}: partner",
            field=RECORD_KEY,
        )
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidInput(
            f"{key}: {shown(kind)} is not a kind of record",
            hint="kinds: " + ", ".join(RECORDS),
            field=key,
        )
    return kind.strip()


def _capped(problems: list[Problem]) -> list[Problem]:
    """At most :data:`MAX_PROBLEMS` problems; the last one counts the rest."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    kept = sorted(problems)[: MAX_PROBLEMS - 1]
    rest = len(problems) - len(kept)
    last = kept[-1]
    return [*kept, Problem(last.file, last.line, f"… and {rest:,} more problems after this line")]


# --------------------------------------------------------------------------- the service


class Evidence:
    """Recording evidence for partnerships, for one actor."""

    def __init__(self, ctx: Context, partnerships: Partnerships) -> None:
        self.ctx = ctx
        self.partnerships = partnerships

    def record(
        self,
        *,
        partnership: str,
        kind: str,
        values: Mapping[str, Any],
        session: Session | None = None,
    ) -> RecordResult:
        """Record one piece of evidence.

        The partnership is read under its row lock and the record checked inside
        the same transaction, so what was checked is what is written.
        """
        if kind not in RECORDS:
            raise InvalidInput(
                f"unknown kind of record {shown(kind)}",
                hint="kinds: " + ", ".join(RECORDS),
                field="kind",
            )
        if session is None:
            self.partnerships.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p = find(s, partnership, for_update=True)
            self.ctx.policy.check_record(s, p, kind)
            batch = _Batch(s, self.ctx.now(), p, explicit=True)
            errors = batch.check(kind, values)
            if errors:
                raise errors[0]
            row = _write(s, self.partnerships, self.ctx.actor.name, p, batch.rows)[0]
            rid = getattr(row, "id", None)
            return RecordResult(
                p.slug, kind, rid if isinstance(rid, int) else None, list(batch.notes)
            )

    def attest(
        self,
        *,
        partnership: str,
        task: str,
        note: str,
        link: str | None = None,
        session: Session | None = None,
    ) -> RecordResult:
        """Attest that a task is done (for judgment-call criteria)."""
        values = {"task": task, "note": note, "link": link}
        return self.record(partnership=partnership, kind="attestation", values=values,
                           session=session)  # fmt: skip

    def update_milestone(
        self,
        *,
        partnership: str,
        milestone: str,
        values: Mapping[str, Any],
        session: Session | None = None,
    ) -> RecordResult:
        """Mark a milestone reached (``done``), explain its delay, or move its deadline
        (task 8.1); a reached milestone is no longer flagged overdue."""
        spec = RECORDS["milestone"]
        allowed = {f.name: f for f in spec.fields if f.name in ("due", "done", "delay")}
        if session is None:
            self.partnerships.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p = find(s, partnership, for_update=True)
            self.ctx.policy.check_record(s, p, "milestone")
            batch = _Batch(s, self.ctx.now(), p, explicit=True)
            name = inputs.line(milestone, field="milestone")
            found = batch._target("milestone", name, "milestone")
            row = s.get(m.Milestone, found.id)
            assert row is not None
            given = {k: v for k, v in values.items() if v is not None}
            if not given:
                raise InvalidInput(
                    f"milestone {shown(name)}: nothing to change",
                    hint="give the date it was reached, the reason for a delay or a new deadline",
                    field="done",
                )
            return self._update(s, p, batch, "milestone", row, allowed, given)

    def update_partner(
        self,
        *,
        partnership: str,
        partner: str,
        values: Mapping[str, Any],
        session: Session | None = None,
    ) -> RecordResult:
        """Change a partner's details (contact, objectives, accountability, active)."""
        spec = RECORDS["partner"]
        allowed = {f.name: f for f in spec.fields if f.name != "name"} | {
            "active": FieldSpec("active", "bool")
        }
        if session is None:
            self.partnerships.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p = find(s, partnership, for_update=True)
            self.ctx.policy.check_change(s, p, action="update partners")
            batch = _Batch(s, self.ctx.now(), p, explicit=True)
            found = batch._target("partner", inputs.line(partner, field="partner"), "partner")
            row = s.get(m.Partner, found.id)
            assert row is not None
            return self._update(s, p, batch, "partner", row, allowed, values)

    def _update(
        self,
        s: Session,
        p: m.Partnership,
        batch: _Batch,
        kind: str,
        row: Any,
        allowed: Mapping[str, FieldSpec],
        values: Mapping[str, Any],
    ) -> RecordResult:
        """Set the ``values`` given (None: not given) on a stored ``row`` of ``kind``,
        each checked by its field's rule; an empty value clears an optional field."""
        for name, raw in values.items():
            if raw is None:
                continue
            f = allowed.get(name)
            if f is None:
                raise InvalidInput(f"{kind}: cannot update {shown(name)}", field=name)
            if _absent(raw) and f.required:
                raise InvalidInput(f"{kind}: {f.name} cannot be empty", field=name)
            try:
                value = batch._convert(f, raw) if not _absent(raw) else None
            except MspflowError as exc:
                raise _named(exc, kind, name) from None
            setattr(row, f.attr, value)
        row.recorded_by, row.recorded_at = self.ctx.actor.name, self.ctx.now()
        s.add(row)
        self.partnerships.touch(s, p)
        return RecordResult(p.slug, kind, row.id)

    def mobilize(
        self, *, partnership: str, resource: int, session: Session | None = None
    ) -> RecordResult:
        """Mark a committed resource as mobilized (task 6.2)."""
        if session is None:
            self.partnerships.prepare(partnership)
        with self.ctx.writing(partnership, session) as s:
            p = find(s, partnership, for_update=True)
            self.ctx.policy.check_change(s, p, action="record evidence")
            row = s.get(m.Resource, resource) if 0 < resource <= inputs.INT_MAX else None
            if row is None or row.partnership_id != p.id:
                raise NotFound(
                    f"partnership {p.slug} has no resource #{resource}", field="resource"
                )
            row.committed = True
            row.mobilized = True
            s.add(row)
            self.partnerships.touch(s, p)
            return RecordResult(p.slug, "resource", row.id)

    def import_file(self, *, partnership: str, path: Path | str) -> ImportResult:
        """Record every row of ``path`` in one transaction: all of them, or none.

        The file is read and every row checked before the write transaction opens;
        if any is wrong, every problem is reported (file and line) and nothing is
        written. The write transaction then only writes, under the partnership's
        row lock, if the partnership has not changed since it was checked (else
        :class:`ConcurrentChange`: run the import again).
        """
        path = Path(path)
        partner = self.ctx.actor.role == "partner"
        with self.ctx.reading() as s:
            p = find(s, partnership)
            if partner:  # partners import the kinds they may record, row by row below
                self.ctx.policy.check_read(s, p)
            else:
                self.ctx.policy.check_change(s, p, action="record evidence")
        rows = _read_rows(path)
        problems: list[Problem] = []
        counts: dict[str, int] = {}
        with self.ctx.reading() as s:
            p = find(s, partnership)
            seen = p.version
            definition_for(s, p)  # compiled here, not in the write transaction
            batch = _Batch(s, self.ctx.now(), p, explicit=False)
            for raw in rows:
                values = dict(raw.values)
                try:
                    kind = _kind_of(values)
                except MspflowError as exc:
                    problems.append(Problem(str(path), raw.line, str(exc)))
                    continue
                if partner:
                    try:
                        self.ctx.policy.check_record(s, p, kind)
                    except MspflowError as exc:
                        problems.append(Problem(str(path), raw.line, str(exc)))
                        continue
                for error in batch.check(kind, values, raw.line):
                    problems.append(Problem(str(path), raw.line, str(error)))
                if not problems:
                    counts[kind] = counts.get(kind, 0) + 1
        if problems:
            raise DefinitionError(_capped(problems))
        with self.ctx.writing(partnership) as s:
            p = find(s, partnership, for_update=True)
            if p.version != seen:
                raise ConcurrentChange(
                    f"partnership {p.slug} changed while {path.name} was being checked; "
                    "nothing was written",
                    hint="run the import again",
                    field="partnership",
                )
            _write(s, self.partnerships, self.ctx.actor.name, p, batch.rows, bulk=True)
        return ImportResult(p.slug, counts)
