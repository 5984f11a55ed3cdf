"""The sector's formats: IATI 2.03 activities and SDG progress for Open SDG sites.

IATI (``iati``): one ``iati-activity`` per partnership, built from its records and
validated against the official 2.03 schema (shipped in ``mspflow/data/iati``) before
anything is written. How mspflow's records map to IATI elements:

==========================  ====================================================
IATI element                from
==========================  ====================================================
iati-identifier             the reporting organisation's identifier, ``-``, the
                            partnership's id (``XM-DAC-41114-water-kch``)
reporting-org               the deployment's ``[iati]`` settings
title                       the partnership's name
description                 type 1 (general): the challenge (profile, task 1.1);
                            type 2 (objectives): the shared goal (task 2.2)
participating-org           each active partner, with its role (funding 1,
                            accountable 2, extending 3, implementing 4)
activity-status             steps 1-6: 1 pipeline/identification; 7-11:
                            2 implementation; 12: 3 finalisation; a final
                            state: 4 closed
activity-date               1 planned start and 3 planned end (the scope, task
                            2.3; without one, the day the partnership was
                            created as planned start); 2 actual start (the
                            announced start, once in step 7 or later); 4 actual
                            end (the day it concluded)
tag                         each SDG target (vocabulary 3) and its goal
                            (vocabulary 2)
transaction                 each mobilised financial resource with an amount:
                            type 1 (incoming funds) from the partner, in its
                            currency (or the activity's default currency)
result / indicator          each tracked SDG indicator (type 3, impact): reference
                            vocabulary 9, baseline, and one period per measured
                            value with the target and the value measured
==========================  ====================================================

Resources that are not financial (human, knowledge, physical ...) have no place in
an IATI transaction; they are left out and listed in the export's notes.

Open SDG (``sdg_progress``): one CSV per tracked indicator, ``indicator_6-1-1.csv``
in the data layout of Open SDG sites (Year, the Partnership as a disaggregation,
Units, Value), holding each partnership's latest value of each year.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from mspflow import inputs
from mspflow.definition.kinds import PARTNER_ROLES as ROLES
from mspflow.definition.model import Step, Workflow
from mspflow.errors import InvalidInput
from mspflow.services.context import Context
from mspflow.services.readmodels import ReadModel
from mspflow.store import models as m
from mspflow.store.definitions import definition_for
from mspflow.store.lookup import find

__all__ = ["ACTIVITY_STATUS", "PARTNER_ROLES", "Exports", "IatiExport", "IatiSettings", "SdgExport"]

#: Partner roles (the partner record's ``role``) as IATI OrganisationRole codes.
PARTNER_ROLES: Mapping[str, str] = dict(zip(ROLES, ("1", "2", "3", "4"), strict=True))
#: IATI ActivityStatus by where the partnership is (see the module's table).
ACTIVITY_STATUS = {"pipeline": "1", "implementation": "2", "finalisation": "3", "closed": "4"}
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data" / "iati"
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class IatiSettings:
    """The reporting organisation, from ``[iati]`` in config.toml or the environment."""

    reporting_org_ref: str
    reporting_org_name: str
    reporting_org_type: str
    default_currency: str | None = None

    @staticmethod
    def load(env: Mapping[str, str] | None = None) -> IatiSettings:
        from mspflow.config import config_path, read_config

        env = dict(os.environ) if env is None else dict(env)
        table = read_config(config_path(env)).get("iati", {})

        def get(key: str) -> str | None:
            value = env.get(f"MSPFLOW_IATI_{key.upper()}", table.get(key))
            return value.strip() if isinstance(value, str) and value.strip() else None

        ref, name = get("reporting_org_ref"), get("reporting_org_name")
        if ref is None or name is None:
            raise InvalidInput(
                "no IATI reporting organisation is configured",
                hint="set reporting_org_ref and reporting_org_name in the [iati] table of "
                "config.toml (or MSPFLOW_IATI_REPORTING_ORG_REF and ..._NAME)",
                field="reporting_org",
            )
        if not _IDENTIFIER.fullmatch(ref):
            raise InvalidInput(
                f"IATI reporting organisation {inputs.shown(ref)} is not an organisation "
                "identifier",
                hint="use the registered identifier, e.g. XM-DAC-41114",
                field="reporting_org",
            )
        currency = get("default_currency")
        if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
            raise InvalidInput(
                f"IATI default currency {inputs.shown(currency)} is not an ISO 4217 code",
                hint="use three capital letters, e.g. USD",
                field="default_currency",
            )
        return IatiSettings(ref, name, get("reporting_org_type") or "80", currency)


@dataclass(frozen=True)
class IatiExport(ReadModel):
    path: str
    activities: int
    #: What IATI could not hold (in-kind resources), one line each.
    notes: list[str]


@dataclass(frozen=True)
class SdgExport(ReadModel):
    folder: str
    #: indicator file -> number of rows
    files: dict[str, int]


class Exports:
    """Exports for donors and national platforms; reads only."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _scope(self, s: Session, refs: Sequence[str]) -> list[m.Partnership]:
        if refs:
            rows = [find(s, r) for r in refs]
            for p in rows:
                self.ctx.policy.check_read(s, p)
            return rows
        query = select(m.Partnership).order_by(col(m.Partnership.id))
        visible = self.ctx.policy.visible(s)
        if visible is not None:
            query = query.where(col(m.Partnership.id).in_(sorted(visible)))
        return list(s.exec(query))

    # -- IATI ------------------------------------------------------------------------
    def iati(
        self,
        *,
        path: str | Path,
        partnerships: Sequence[str] = (),
        settings: IatiSettings | None = None,
    ) -> IatiExport:
        """Write an ``iati-activities`` file (version 2.03) of ``partnerships`` (all the
        actor may read, by default) to ``path``, once it validates; else nothing."""
        from lxml import etree

        from mspflow.outfile import write_output

        settings = settings or IatiSettings.load()
        notes: list[str] = []
        with self.ctx.reading() as s:
            rows = self._scope(s, partnerships)
            root = etree.Element(
                "iati-activities",
                version="2.03",
                **{"generated-datetime": _stamp(self.ctx.now())},
            )
            for p in rows:
                root.append(_activity(s, p, settings, notes))
        text = etree.tostring(root, pretty_print=True, encoding="unicode")
        _validate(text, {f"{settings.reporting_org_ref}-{p.slug}": p.slug for p in rows})
        document = '<?xml version="1.0" encoding="UTF-8"?>\n' + text
        write_output(str(path), lambda out: out.write(document))
        return IatiExport(str(path), len(rows), notes)

    # -- Open SDG --------------------------------------------------------------------
    def sdg_progress(self, *, folder: str | Path, partnerships: Sequence[str] = ()) -> SdgExport:
        """One Open SDG data file per tracked indicator, in ``folder`` (made if missing)."""
        target = _folder(folder)
        series: dict[str, dict[tuple[int, str], tuple[date, float, str]]] = {}
        with self.ctx.reading() as s:
            for p in self._scope(s, partnerships):
                indicators = {
                    i.id: i
                    for i in s.exec(
                        select(m.SdgIndicator).where(m.SdgIndicator.partnership_id == p.id)
                    )
                }
                for v in s.exec(
                    select(m.IndicatorValue)
                    .where(m.IndicatorValue.partnership_id == p.id)
                    .order_by(col(m.IndicatorValue.measured_on), col(m.IndicatorValue.id))
                ):
                    i = indicators[v.indicator_id]
                    rows = series.setdefault(i.code, {})
                    rows[(v.measured_on.year, p.name)] = (v.measured_on, v.value, i.unit or "")
        files: dict[str, int] = {}
        for code in sorted(series):
            name = f"indicator_{code.replace('.', '-')}.csv"
            lines = sorted(series[code].items())
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["Year", "Partnership", "Units", "Value"])
            for (year, partnership), (_on, value, unit) in lines:
                writer.writerow([year, _cell(partnership), _cell(unit), f"{value:g}"])
            _write(target / name, buffer.getvalue())
            files[name] = len(lines)
        return SdgExport(str(target), files)


# --------------------------------------------------------------------------- building


def _folder(folder: str | Path) -> Path:
    """The folder named for writing: an existing one, or a new one in an existing folder
    (made now); anything else is refused before any work."""
    name = str(folder)

    def refuse(why: str, hint: str | None = None) -> InvalidInput:
        return InvalidInput(
            f"cannot write into {inputs.shown(name, 200)}: {why}", hint=hint, field="output"
        )

    if not name.strip():
        raise refuse("no folder is named", "name the folder to write the files into")
    if "\x00" in name:
        raise refuse("the path contains a NUL character")
    target = Path(name).expanduser()
    try:
        if target.is_dir():
            return target
        if target.exists() or target.is_symlink():
            raise refuse("it is not a folder", "name a folder (a new one is made)")
        if not target.parent.is_dir():
            raise refuse("the folder it would be made in does not exist",
                         "make that folder first, or name another")  # fmt: skip
        target.mkdir()
    except OSError as exc:
        raise refuse(exc.strerror or str(exc)) from None
    return target


def _write(path: Path, text: str) -> None:
    from mspflow.outfile import write_output

    write_output(str(path), lambda out: out.write(text))


def _stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _sub(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
    from lxml import etree

    el = etree.SubElement(parent, tag, {k.replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        etree.SubElement(el, "narrative").text = _xml_text(text)
    return el


def _xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (stored text may have them)."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "", text)


def _refuse(p: m.Partnership, what: str, hint: str, field: str = "partnership") -> InvalidInput:
    return InvalidInput(f"IATI export: partnership {p.slug}: {what}", hint=hint, field=field)


def _status(wf: Any, p: m.Partnership) -> str:
    if wf.is_final(p.state):
        return ACTIVITY_STATUS["closed"]
    number = wf.step(p.state).number
    if number <= 6:
        return ACTIVITY_STATUS["pipeline"]
    return ACTIVITY_STATUS["implementation" if number <= 11 else "finalisation"]


def _implementing(wf: Workflow, p: m.Partnership) -> bool:
    """Whether implementation has begun: in step 7 (the loop's start) or later, or closed."""
    if wf.is_final(p.state):
        return True
    start: Step | None = wf.find_step(wf.cycle_start) if wf.cycle_start else None
    return wf.step(p.state).number >= (start.number if start else 7)


def _activity(s: Session, p: m.Partnership, cfg: IatiSettings, notes: list[str]) -> Any:
    from lxml import etree

    wf = definition_for(s, p)
    profile = s.get(m.Profile, p.id)
    scope = s.get(m.Scope, p.id)
    attrs = {"last-updated-datetime": _stamp(_aware(p.updated_at))}
    if cfg.default_currency:
        attrs["default-currency"] = cfg.default_currency
    act = etree.Element("iati-activity", attrs)
    _sub(act, "iati-identifier").text = f"{cfg.reporting_org_ref}-{p.slug}"
    _sub(act, "reporting-org", cfg.reporting_org_name, ref=cfg.reporting_org_ref,
         type=cfg.reporting_org_type)  # fmt: skip
    _sub(act, "title", p.name)
    texts = [("1", profile.challenge if profile else None),
             ("2", profile.shared_goal if profile else None)]  # fmt: skip
    if not any(text for _, text in texts):
        raise _refuse(p, "it has no description",
                      "record its challenge or shared goal in the profile")  # fmt: skip
    for kind, text in texts:
        if text:
            _sub(act, "description", text, type=kind)
    partners = list(
        s.exec(
            select(m.Partner)
            .where(m.Partner.partnership_id == p.id, col(m.Partner.active).is_(True))
            .order_by(col(m.Partner.id))
        )
    )
    for partner in partners:
        if partner.role is None:
            raise _refuse(
                p,
                f"partner {inputs.shown(partner.name)} has no role",
                "give it one: " + ", ".join(PARTNER_ROLES),
                field="role",
            )
        _sub(act, "participating-org", partner.name, role=PARTNER_ROLES[partner.role])
    _sub(act, "activity-status", code=_status(wf, p))
    start = scope.start_date if scope and scope.start_date else _aware(p.created_at).date()
    _sub(act, "activity-date", type="1", iso_date=start.isoformat())
    if profile and profile.implementation_start and _implementing(wf, p):
        _sub(act, "activity-date", type="2", iso_date=profile.implementation_start.isoformat())
    if scope and scope.end_date:
        _sub(act, "activity-date", type="3", iso_date=scope.end_date.isoformat())
    if wf.is_final(p.state):
        _sub(act, "activity-date", type="4", iso_date=_aware(p.updated_at).date().isoformat())
    goals: list[str] = []
    targets = sorted(s.exec(select(m.SdgTarget.code).where(m.SdgTarget.partnership_id == p.id)))
    for code in targets:
        goal = code.split(".")[0]
        if goal not in goals:
            goals.append(goal)
    for goal in goals:
        _sub(act, "tag", vocabulary="2", code=goal)
    for code in targets:
        _sub(act, "tag", vocabulary="3", code=code)
    names = {
        x.id: x.name for x in s.exec(select(m.Partner).where(m.Partner.partnership_id == p.id))
    }
    for r in s.exec(
        select(m.Resource).where(m.Resource.partnership_id == p.id).order_by(col(m.Resource.id))
    ):
        if r.kind != "financial":
            notes.append(f"{p.slug}: {r.kind} resource of {names.get(r.partner_id, '?')} "
                         f"(#{r.id}, {r.description[:60]}) is not an IATI transaction")  # fmt: skip
            continue
        if not (r.mobilized and r.amount):
            continue
        currency = r.currency or cfg.default_currency
        if currency is None:
            raise _refuse(p, f"resource #{r.id} has an amount but no currency",
                          "record its currency, or set [iati] default_currency",
                          field="currency")  # fmt: skip
        on = _aware(r.recorded_at).date().isoformat()
        t = _sub(act, "transaction")
        _sub(t, "transaction-type", code="1")
        _sub(t, "transaction-date", iso_date=on)
        _sub(t, "value", currency=currency, value_date=on).text = f"{r.amount:.2f}"
        _sub(t, "description", r.description)
        _sub(t, "provider-org", names.get(r.partner_id, ""))
    for result in _results(s, p, scope):
        act.append(result)
    return act


def _results(s: Session, p: m.Partnership, scope: m.Scope | None) -> Iterator[Any]:
    from lxml import etree

    from mspflow.services.evidence import sdg_indicators

    titles = sdg_indicators()
    for i in s.exec(
        select(m.SdgIndicator)
        .where(m.SdgIndicator.partnership_id == p.id)
        .order_by(col(m.SdgIndicator.id))
    ):
        result = etree.Element("result", type="3")
        _sub(result, "title", f"SDG indicator {i.code}")
        measure = "2" if i.unit and "%" in i.unit else "1"
        ind = _sub(result, "indicator", measure=measure,
                   ascending="true" if i.target >= i.baseline else "false")  # fmt: skip
        _sub(ind, "title", titles.get(i.code, i.code))
        _sub(ind, "reference", vocabulary="9", code=i.code)
        since = i.baseline_on or (scope.start_date if scope else None)
        base = {
            "year": str((since or _aware(i.recorded_at).date()).year),
            "value": f"{i.baseline:g}",
        }
        if since:
            base["iso-date"] = since.isoformat()
        _sub(ind, "baseline", **base)
        previous = since
        for v in s.exec(
            select(m.IndicatorValue)
            .where(m.IndicatorValue.indicator_id == i.id)
            .order_by(col(m.IndicatorValue.measured_on), col(m.IndicatorValue.id))
        ):
            begin = previous if previous and previous <= v.measured_on else v.measured_on
            period = _sub(ind, "period")
            _sub(period, "period-start", iso_date=begin.isoformat())
            _sub(period, "period-end", iso_date=v.measured_on.isoformat())
            _sub(period, "target", value=f"{i.target:g}")
            _sub(period, "actual", value=f"{v.value:g}")
            previous = v.measured_on
        yield result


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


_SCHEMA: list[Any] = []


def _validate(text: str, partnership_of: Mapping[str, str]) -> None:
    """Check ``text`` against the IATI 2.03 activity schema; the first problem is
    refused naming the element and the partnership it belongs to."""
    from lxml import etree

    if not _SCHEMA:
        _SCHEMA.append(etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "iati-activities-schema.xsd"))))
    schema = _SCHEMA[0]
    doc = etree.fromstring(text.encode("utf-8"))
    if schema.validate(doc):
        return
    error = schema.error_log[0]
    where = "the file"
    element = next((e for e in doc.iter() if e.sourceline == error.line), None)
    activity = element
    while activity is not None and activity.tag != "iati-activity":
        activity = activity.getparent()
    if activity is not None:
        ident = activity.findtext("iati-identifier") or ""
        where = f"partnership {partnership_of.get(ident, ident)}"
    tag = element.tag if element is not None else "?"
    raise InvalidInput(
        f"IATI export: {where}: <{tag}>: {error.message}",
        hint="nothing was written; record what the element needs",
        field="partnership",
    )
