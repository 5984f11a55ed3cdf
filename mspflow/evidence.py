"""Recording evidence: one declarative spec per kind of record.

The same :data:`RECORDS` table drives the ``mspflow record KIND`` commands and
bulk import from YAML or CSV, so a field is validated the same way wherever it
comes from. Values arrive as text and are converted here; a wrong value raises
:class:`~mspflow.errors.InvalidInput` naming the field and how to fix it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from mspflow.auth import Actor, require_role
from mspflow.definition.checks import RISK_AREAS
from mspflow.definition.model import CADENCE_DAYS
from mspflow.engine import PartnershipService, definition_for
from mspflow.errors import DefinitionError, InvalidInput, MspflowError, NotFound, Problem
from mspflow.scheduler.times import check_start, midterm_date, parse_local_time
from mspflow.store import models as m
from mspflow.store import write_session

__all__ = [
    "RECORDS",
    "FieldSpec",
    "RecordSpec",
    "import_file",
    "record",
    "sdg_targets",
]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    # text | date | bool | number | int | time | choice | sdg | partner | component | objective
    type: str = "text"
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    multiple: bool = False
    argument: bool = False  # positional on the command line
    column: str | None = None  # the model attribute, when it differs from ``name``

    @property
    def attr(self) -> str:
        return self.column or self.name

    @property
    def option(self) -> str:
        """How the field is named on the command line."""
        return self.name.upper() if self.argument else "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class RecordSpec:
    kind: str
    model: type[Any]
    task: str
    help: str
    fields: tuple[FieldSpec, ...]
    single: bool = False  # one row per partnership, updated in place
    after: Callable[[Session, m.Partnership, Any, dict[str, Any]], None] | None = None


F = FieldSpec


# --------------------------------------------------------------------------- SDG targets


@cache
def sdg_targets() -> frozenset[str]:
    """The 169 SDG target codes ("6.1", "6.a"), from the Open SDG data shipped in mspflow."""
    import yaml

    path = Path(__file__).parent / "data" / "sdg_targets.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return frozenset(k.removesuffix("-title").replace("-", ".") for k in data)


def _sdg_code(value: str) -> str:
    code = value.strip().lower().replace("-", ".").removeprefix("sdg").strip(" .")
    if code not in sdg_targets():
        raise ValueError(
            f"'{value}' is not an SDG target code; use goal.target as in 6.1 or 6.a "
            f"(there are {len(sdg_targets())})"
        )
    return code


# --------------------------------------------------------------------------- conversions


def _convert(spec: FieldSpec, raw: Any, session: Session, p: m.Partnership, kind: str) -> Any:
    if spec.multiple:
        items = raw if isinstance(raw, list | tuple) else [x for x in str(raw).split(";") if x]
        single = FieldSpec(spec.name, spec.type, spec.required, choices=spec.choices)
        return [_convert(single, item, session, p, kind) for item in items]
    if isinstance(raw, str):
        raw = raw.strip()
    t = spec.type
    if t == "text":
        return str(raw)
    if t == "date":
        if isinstance(raw, date):
            return raw
        try:
            return date.fromisoformat(str(raw))
        except ValueError:
            raise ValueError(f"'{raw}' is not a date; write it as YYYY-MM-DD") from None
    if t == "bool":
        if isinstance(raw, bool):
            return raw
        word = str(raw).lower()
        if word in ("true", "1", "yes", "y"):
            return True
        if word in ("false", "0", "no", "n", ""):
            return False
        raise ValueError(f"'{raw}' is not true or false")
    if t in ("number", "int"):
        try:
            return float(raw) if t == "number" else int(raw)
        except ValueError:
            raise ValueError(
                f"'{raw}' is not a {'number' if t == 'number' else 'whole number'}"
            ) from None
    if t == "time":
        try:
            datetime.strptime(str(raw), "%H:%M")
        except ValueError:
            raise ValueError(f"'{raw}' is not a time; write it as HH:MM (24-hour)") from None
        return str(raw)
    if t == "choice":
        if raw not in spec.choices:
            raise ValueError(f"'{raw}' is not one of: {', '.join(spec.choices)}")
        return raw
    if t == "sdg":
        return _sdg_code(str(raw))
    if t == "partner":
        return _partner(session, p, str(raw)).id
    if t == "component":
        return _by_name(session, p, m.Component, str(raw), "component").id
    if t == "objective":
        return _by_name(session, p, m.Objective, str(raw), "objective").id
    raise AssertionError(t)


def _partner(session: Session, p: m.Partnership, ref: str) -> m.Partner:
    return _by_name(session, p, m.Partner, ref, "partner")  # type: ignore[no-any-return]


def _by_name(session: Session, p: m.Partnership, model: type[Any], ref: str, what: str) -> Any:
    column = model.text if model is m.Objective else model.name
    row = session.exec(select(model).where(model.partnership_id == p.id, column == ref)).first()
    if row is None and ref.lstrip("#").isdigit():
        row = session.get(model, int(ref.lstrip("#")))
        if row is not None and row.partnership_id != p.id:
            row = None
    if row is None:
        raise NotFound(
            f"partnership {p.slug} has no {what} '{ref}'",
            hint=f"give its name or #id ('mspflow partnership show {p.slug}')",
        )
    return row


# --------------------------------------------------------------------------- after-hooks


def _component_objectives(s: Session, p: m.Partnership, row: Any, v: dict[str, Any]) -> None:
    for objective_id in v.get("objective") or []:
        s.add(m.ComponentObjective(component_id=row.id, objective_id=objective_id))


def _attendance(s: Session, p: m.Partnership, row: Any, v: dict[str, Any]) -> None:
    for partner_id in dict.fromkeys(v.get("present") or []):
        s.add(m.MeetingAttendance(meeting_id=row.id, partner_id=partner_id))


def _scope_dates(s: Session, p: m.Partnership, row: Any, v: dict[str, Any]) -> None:
    if row.start_date and row.end_date and row.end_date <= row.start_date:
        raise InvalidInput(
            f"scope of {p.slug}: --end {row.end_date} is not after --start {row.start_date}"
        )
    if row.start_date and row.end_date:
        _derive_midterm(s, p, row)


def _derive_midterm(s: Session, p: m.Partnership, scope: m.Scope) -> None:
    """Keep the midterm review (task 9.1) halfway through the time frame (task 2.3)."""
    wf = definition_for(s, p)
    assert scope.start_date and scope.end_date
    middle = midterm_date(scope.start_date, scope.end_date)
    for kind in wf.schedule_kinds:
        if kind.derived != "midterm":
            continue
        current = s.exec(
            select(m.Schedule).where(
                m.Schedule.partnership_id == p.id,
                m.Schedule.kind == kind.id,
                col(m.Schedule.active).is_(True),
            )
        ).first()
        if current is not None and current.starts_on == middle:
            continue
        if current is not None:
            current.active = False
            s.add(current)
        s.add(
            m.Schedule(
                partnership_id=p.id,
                kind=kind.id,
                cadence=kind.default or "once",
                starts_on=middle,
                local_time=current.local_time if current else "09:00",
                timezone=current.timezone if current else p.timezone,
                lead_days=current.lead_days if current else "30,7",
                grace_days=current.grace_days if current else 14,
                recorded_by=scope.recorded_by,
                recorded_at=scope.recorded_at,
            )
        )


def _activity_dates(s: Session, p: m.Partnership, row: Any, v: dict[str, Any]) -> None:
    if row.start and row.end and row.end < row.start:
        raise InvalidInput(f"activity '{row.name}': --end is before --start")
    component = s.get(m.Component, row.component_id)
    assert component is not None


def _agreement_lead(s: Session, p: m.Partnership, row: Any, v: dict[str, Any]) -> None:
    lead = s.exec(
        select(m.OverallLead)
        .where(m.OverallLead.partnership_id == p.id)
        .order_by(col(m.OverallLead.id).desc())
    ).first()
    if lead is None:
        raise InvalidInput(
            f"partnership {p.slug} has no overall lead to agree to",
            hint="name one first with 'mspflow record leadership P PARTNER'",
        )
    row.lead_id = lead.id


def _schedule(s: Session, p: m.Partnership, row: Any, v: dict[str, Any]) -> None:
    from mspflow.engine import _check_timezone

    wf = definition_for(s, p)
    kind = wf.schedule_kind(row.kind)
    if kind is None:
        raise InvalidInput(
            f"unknown schedule kind '{row.kind}'",
            hint="kinds: " + ", ".join(k.id for k in wf.schedule_kinds),
        )
    if row.cadence not in kind.cadences:
        too_loose = kind.minimum and CADENCE_DAYS.get(row.cadence, 0) > CADENCE_DAYS[kind.minimum]
        why = f"less frequent than {kind.minimum} " if too_loose else ""
        raise InvalidInput(
            f"a {row.cadence} {kind.name.lower()} is {why}not allowed by task {kind.task}",
            hint=f"use one of: {', '.join(kind.cadences)}",
        )
    _check_timezone(row.timezone)
    if kind.derived == "midterm":
        scope = s.get(m.Scope, p.id)
        if scope is None or not (scope.start_date and scope.end_date):
            raise InvalidInput(
                f"the {kind.name.lower()} of {p.slug} is derived from the time frame, "
                "which is not recorded",
                hint="record it with 'mspflow record scope P --start DATE --end DATE'",
            )
        row.starts_on = midterm_date(scope.start_date, scope.end_date)
    elif row.starts_on is None:
        raise InvalidInput(f"schedule {row.kind}: --start is required")
    check_start(row.cadence, row.starts_on)
    parse_local_time(row.local_time)
    try:
        days = [int(x) for x in row.lead_days.split(",") if x.strip()]
    except ValueError:
        raise InvalidInput(f"--lead-days '{row.lead_days}' must be whole days, e.g. 7,1") from None
    if any(d < 0 for d in days):
        raise InvalidInput("--lead-days cannot be negative")
    if row.grace_days < 0:
        raise InvalidInput("--grace-days cannot be negative")
    # One active schedule per kind: a new one replaces the old (kept, inactive).
    for old in s.exec(
        select(m.Schedule).where(
            m.Schedule.partnership_id == p.id,
            m.Schedule.kind == row.kind,
            col(m.Schedule.active).is_(True),
            col(m.Schedule.id) != row.id,
        )
    ):
        old.active = False
        s.add(old)


_PROFILE_TEXT = (
    "challenge", "lead_organization", "senior_support", "partnering_rationale",
    "partner_kinds_needed", "problem_definition", "target_population", "baseline_conditions",
    "shared_goal", "policy_coherence", "indicator_baseline",
)  # fmt: skip

RECORDS: Mapping[str, RecordSpec] = {
    r.kind: r
    for r in (
        RecordSpec(
            "profile",
            m.Profile,
            "1.1-2.4",
            "Facts of steps 1-2 and the start date (6.1).",
            (*(F(n) for n in _PROFILE_TEXT), F("implementation_start", "date")),
            single=True,
        ),
        RecordSpec(
            "scope",
            m.Scope,
            "2.3",
            "Outputs, geography, time frame, resources, limits.",
            (
                F("outputs"),
                F("geographic_focus"),
                F("start", "date", column="start_date"),
                F("end", "date", column="end_date"),
                F("resources_needed"),
                F("out_of_scope"),
            ),
            single=True,
            after=_scope_dates,
        ),
        RecordSpec(
            "governance",
            m.Governance,
            "3.5",
            "Governance and the process baseline.",
            (F("procedures"), F("process_baseline")),
            single=True,
        ),
        RecordSpec(
            "decision-making",
            m.DecisionMaking,
            "5.3",
            "How decisions are taken, including in emergencies.",
            (F("structure"), F("contingency_process")),
            single=True,
        ),
        RecordSpec(
            "sdg",
            m.SdgTarget,
            "1.1",
            "Link an SDG target (e.g. 6.1).",
            (F("code", "sdg", True, "target code", argument=True),),
        ),
        RecordSpec(
            "objective",
            m.Objective,
            "2.2",
            "An objective of the partnership.",
            (F("text", required=True, argument=True),),
        ),
        RecordSpec(
            "partner",
            m.Partner,
            "1.4",
            "A partner organization.",
            (
                F("name", required=True, argument=True),
                F("sector", required=True),
                F("contact", column="contact_name"),
                F("email", column="contact_email"),
                F("can_decide", "bool", help="the contact can commit the organization"),
                F("objectives"),
                F("accountable_to"),
            ),
        ),
        RecordSpec(
            "resource",
            m.Resource,
            "3.1",
            "A resource a partner brings.",
            (
                F("partner", "partner", True, argument=True, column="partner_id"),
                F("kind", "choice", True, choices=("in-kind", "financial")),
                F("description", required=True),
                F("amount", "number"),
                F("committed", "bool"),
                F("mobilized", "bool"),
            ),
        ),
        RecordSpec(
            "risk",
            m.Risk,
            "3.2",
            "A risk of partnering, with its mitigation.",
            (
                F("area", "choice", True, choices=RISK_AREAS),
                F("description", required=True),
                F("mitigation"),
            ),
        ),
        RecordSpec(
            "signature",
            m.Signature,
            "3.4",
            "A partner signed the partnering agreement.",
            (
                F("partner", "partner", True, argument=True, column="partner_id"),
                F("on", "date", column="signed_on"),
                F("document"),
            ),
        ),
        RecordSpec(
            "component",
            m.Component,
            "4.1",
            "A component and the objectives it serves.",
            (
                F("name", required=True, argument=True),
                F("objective", "objective", multiple=True, column="-"),
            ),
            after=_component_objectives,
        ),
        RecordSpec(
            "component-lead",
            m.ComponentLead,
            "5.2",
            "A partner leads a component.",
            (
                F("component", "component", True, argument=True, column="component_id"),
                F("partner", "partner", True, argument=True, column="partner_id"),
                F("joint", "bool"),
            ),
        ),
        RecordSpec(
            "activity",
            m.Activity,
            "4.2",
            "An activity with one responsible partner.",
            (
                F("component", "component", True, argument=True, column="component_id"),
                F("name", required=True, argument=True),
                F("responsible", "partner", True, column="responsible_partner_id"),
                F("start", "date"),
                F("end", "date"),
            ),
            after=_activity_dates,
        ),
        RecordSpec(
            "leadership",
            m.OverallLead,
            "5.1",
            "Name the partner leading overall.",
            (F("partner", "partner", True, argument=True, column="partner_id"),),
        ),
        RecordSpec(
            "leadership-agreement",
            m.LeadershipAgreement,
            "5.1",
            "A partner agrees to the overall lead.",
            (F("partner", "partner", True, argument=True, column="partner_id"),),
            after=_agreement_lead,
        ),
        RecordSpec(
            "schedule",
            m.Schedule,
            "7.1/8.1",
            "An agreed cadence (see FRAMEWORK 4).",
            (
                F("kind", required=True, argument=True),
                F("cadence", required=True),
                F("start", "date", column="starts_on", help="first date (derived for midterm)"),
                F("at", "time", column="local_time", help="local time HH:MM"),
                F("timezone"),
                F("lead_days", help="days before, e.g. 7,1"),
                F("grace_days", "int"),
            ),
            after=_schedule,
        ),
        RecordSpec(
            "meeting",
            m.Meeting,
            "7.1",
            "A coordination meeting, minutes, attendance.",
            (
                F("on", "date", column="held_on"),
                F("minutes"),
                F("present", "partner", multiple=True, column="-"),
            ),
            after=_attendance,
        ),
        RecordSpec(
            "health-check",
            m.HealthCheck,
            "7.4",
            "A health check of the partnership.",
            (F("on", "date", column="held_on"), F("summary", required=True)),
        ),
        RecordSpec(
            "monitoring",
            m.Monitoring,
            "8.1/8.2",
            "Progress or process monitored.",
            (
                F("kind", "choice", True, choices=("progress", "process")),
                F("on", "date", column="recorded_on"),
                F("summary", required=True),
            ),
        ),
        RecordSpec(
            "report",
            m.Report,
            "8.3",
            "A progress report issued.",
            (F("on", "date", column="issued_on"), F("period", required=True), F("link")),
        ),
        RecordSpec(
            "panel-member",
            m.PanelMember,
            "9.1",
            "A partner's review-panel member.",
            (
                F("partner", "partner", True, argument=True, column="partner_id"),
                F("name", required=True),
            ),
        ),
        RecordSpec(
            "review",
            m.Review,
            "9.1/9.2",
            "A review of progress or of processes.",
            (
                F("kind", "choice", True, choices=("progress", "process", "midterm")),
                F("on", "date", column="held_on"),
                F("findings", required=True),
                F("on_track", "bool"),
            ),
        ),
        RecordSpec(
            "revision",
            m.Revision,
            "10.1",
            "A revision made after review.",
            (F("description", required=True),),
        ),
        RecordSpec(
            "lesson",
            m.Lesson,
            "10.2",
            "A lesson learned.",
            (F("text", required=True, argument=True),),
        ),
        RecordSpec(
            "attestation",
            m.Attestation,
            "any",
            "A secretariat member attests a task is done.",
            (F("task", required=True, argument=True), F("note", required=True), F("link")),
        ),
    )
}


def _today(service: PartnershipService, p: m.Partnership) -> date:
    """Today in the partnership's time zone, by the injected clock."""
    from zoneinfo import ZoneInfo

    return service.clock.now().astimezone(ZoneInfo(p.timezone)).date()


def _unknown_task(s: Session, p: m.Partnership, task: str) -> None:
    wf = definition_for(s, p)
    if wf.task(task) is None:
        raise InvalidInput(
            f"there is no task '{task}' in {wf.name}",
            hint="'mspflow workflow show' lists the tasks",
        )


def record(
    service: PartnershipService,
    actor: Actor,
    ref: str,
    kind: str,
    values: Mapping[str, Any],
    *,
    session: Session | None = None,
) -> Any:
    """Record one piece of evidence; returns the stored row."""
    require_role(actor, "secretariat", action="record evidence")
    spec = RECORDS.get(kind)
    if spec is None:
        raise InvalidInput(f"unknown kind of record '{kind}'", hint="kinds: " + ", ".join(RECORDS))
    if session is None:
        with write_session(service.engine) as s:
            return record(service, actor, ref, kind, values, session=s)
    s = session
    p = service.get(s, ref)
    wf = definition_for(s, p)
    if wf.is_final(p.state):
        raise InvalidInput(f"partnership {p.slug} is closed; its record is final")
    unknown = set(values) - {f.name for f in spec.fields}
    if unknown:
        raise InvalidInput(
            f"{kind}: unknown field(s) {', '.join(sorted(unknown))}",
            hint="fields: " + ", ".join(f.name for f in spec.fields),
        )
    converted: dict[str, Any] = {}
    for f in spec.fields:
        raw = values.get(f.name)
        if f.name == "on" and not raw:
            raw = _today(service, p)
        if raw is None or raw == "" or raw == []:
            if f.required:
                raise InvalidInput(f"{kind}: {f.option} is required", hint=f.help or None)
            continue
        try:
            converted[f.name] = _convert(f, raw, s, p, kind)
        except MspflowError:
            raise
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{kind}: {f.option} {exc}".rstrip()) from None
    if kind == "attestation":
        _unknown_task(s, p, converted["task"])
    now = service.clock.now()
    columns = {
        f.attr: converted[f.name] for f in spec.fields if f.name in converted and f.attr != "-"
    }
    if spec.single:
        row = s.get(spec.model, p.id)
        if row is None:
            row = spec.model(partnership_id=p.id, recorded_by=actor.name, recorded_at=now)
        for name, value in columns.items():
            setattr(row, name, value)
        row.recorded_by, row.recorded_at = actor.name, now
    else:
        if kind == "leadership-agreement":
            columns["lead_id"] = 0  # set by the after-hook
        row = spec.model(partnership_id=p.id, recorded_by=actor.name, recorded_at=now, **columns)
    if kind == "schedule":
        row.timezone = row.timezone if "timezone" in converted else p.timezone
    if spec.after is not None and kind in ("leadership-agreement",):
        spec.after(s, p, row, converted)
    s.add(row)
    try:
        s.flush()
    except Exception as exc:  # unique constraints: the same partner twice, ...
        from sqlalchemy.exc import IntegrityError

        if isinstance(exc, IntegrityError):
            raise InvalidInput(f"{kind}: this {kind} is already recorded for {p.slug}") from None
        raise
    if spec.after is not None and kind not in ("leadership-agreement",):
        spec.after(s, p, row, converted)
        s.flush()
    service.touch(s, p)
    return row


def update_partner(
    service: PartnershipService, actor: Actor, ref: str, partner: str, values: Mapping[str, Any]
) -> m.Partner:
    """Change a partner's details (contact, objectives, accountability, active)."""
    require_role(actor, "secretariat", action="update partners")
    spec = RECORDS["partner"]
    allowed = {f.name: f for f in spec.fields if f.name != "name"} | {
        "active": FieldSpec("active", "bool")
    }
    with write_session(service.engine) as s:
        p = service.get(s, ref)
        row = _partner(s, p, partner)
        for name, raw in values.items():
            if raw is None:
                continue
            f = allowed.get(name)
            if f is None:
                raise InvalidInput(f"partner: cannot update '{name}'")
            try:
                setattr(row, f.attr, _convert(f, raw, s, p, "partner"))
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"partner: {f.option} {exc}") from None
        row.recorded_by, row.recorded_at = actor.name, service.clock.now()
        s.add(row)
        service.touch(s, p)
        return row


def mobilize(service: PartnershipService, actor: Actor, ref: str, resource_id: int) -> m.Resource:
    """Mark a committed resource as mobilized (task 6.2)."""
    require_role(actor, "secretariat", action="record evidence")
    with write_session(service.engine) as s:
        p = service.get(s, ref)
        row = s.get(m.Resource, resource_id)
        if row is None or row.partnership_id != p.id:
            raise NotFound(f"partnership {p.slug} has no resource #{resource_id}")
        row.committed = True
        row.mobilized = True
        s.add(row)
        service.touch(s, p)
        return row


# --------------------------------------------------------------------------- bulk import


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a YAML list or a CSV file, each with its line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem(str(path), 0, f"cannot read the file: {exc}")]) from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = []
        for record_ in reader:
            values = {k.strip(): v for k, v in record_.items() if k and v not in (None, "")}
            rows.append((reader.line_num, values))
        return rows
    from mspflow.definition.yamlsafe import LDict, LList, load_yaml

    data, problems = load_yaml(text, str(path))
    if problems:
        raise DefinitionError(problems)
    if not isinstance(data, LList) or not all(isinstance(x, LDict) for x in data):
        raise DefinitionError(
            [Problem(str(path), 1, "expected a list of records, each a mapping with a 'kind' key")]
        )
    return [(data.line_of(i), dict(x)) for i, x in enumerate(data)]


def import_file(service: PartnershipService, actor: Actor, ref: str, path: Path) -> dict[str, int]:
    """Record every row of ``path`` in one transaction: all of them, or none.

    Every row is checked; if any is wrong, all problems are reported (file and
    line) and nothing is written.
    """
    require_role(actor, "secretariat", action="record evidence")
    rows = _read_rows(path)
    problems: list[Problem] = []
    counts: dict[str, int] = {}
    with write_session(service.engine) as s:
        for line, values in rows:
            values = dict(values)
            kind = str(values.pop("kind", "")).strip()
            for key, value in list(values.items()):
                if isinstance(value, list):
                    values[key] = [str(v) for v in value]
                elif not isinstance(value, bool | date):
                    values[key] = str(value)
            try:
                with s.begin_nested():
                    record(service, actor, ref, kind, values, session=s)
            except MspflowError as exc:
                if isinstance(exc, NotFound) and "no partnership" in exc.message:
                    raise
                problems.append(Problem(str(path), line, str(exc)))
                continue
            counts[kind] = counts.get(kind, 0) + 1
        if problems:
            raise DefinitionError(problems)  # leaving the block rolls everything back
    return counts


def kinds_help() -> Sequence[str]:
    return [f"{k}: {r.help}" for k, r in RECORDS.items()]
