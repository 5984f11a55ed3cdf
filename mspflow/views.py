"""How partnerships and their history are shown: JSON-ready dicts and text.

The keys of these dicts are the stable ``--json`` interface documented in
README.md; add keys freely, never rename or remove one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, func, select

from mspflow.definition.model import Workflow
from mspflow.engine import CriterionStatus, PartnershipService, definition_for
from mspflow.store import models as m

__all__ = [
    "event_dict",
    "event_line",
    "evidence_refs",
    "partnership_dict",
    "partnership_text",
    "timeline",
]


def _step_dict(wf: Workflow, state: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    step = wf.find_step(state)
    if step is None:
        return None, None
    module = wf.module_of(step)
    return (
        {"number": step.number, "id": step.id, "name": step.name},
        {"id": module.id, "name": module.name},
    )


def _criterion(st: CriterionStatus) -> dict[str, Any]:
    c = st.criterion
    return {
        "criterion": c.id,
        "task": c.task,
        "title": c.title,
        "state": st.state,
        "detail": st.result.detail,
        "fix": c.fix,
        "waived_by": st.waived_by,
    }


def partnership_dict(
    service: PartnershipService, s: Session, p: m.Partnership, *, detail: bool = True
) -> dict[str, Any]:
    wf = definition_for(s, p)
    step, module = _step_dict(wf, p.state)
    final = wf.is_final(p.state)
    data: dict[str, Any] = {
        "id": p.slug,
        "name": p.name,
        "workflow": {
            "name": p.workflow_name,
            "version": p.workflow_version,
            "hash": p.workflow_hash,
        },
        "state": p.state,
        "step": step,
        "module": module,
        "status": "closed" if final else "active",
        "final_state": wf.final_state(p.state).name if final else None,
        "version": p.version,
        "timezone": p.timezone,
        "parent": _slug(s, p.parent_id),
    }
    open_debt = s.exec(
        select(func.count())
        .select_from(m.GateDebt)
        .where(m.GateDebt.partnership_id == p.id, m.GateDebt.status == "open")
    ).one()
    data["gate_debt_open"] = int(open_debt)
    if not detail:
        return data
    statuses = service.gate_status(s, p, wf)
    data["criteria"] = [_criterion(st) for st in statuses]
    data["unmet_criteria"] = [_criterion(st) for st in statuses if st.state == "unmet"]
    data["moves"] = [
        {
            "kind": t.kind,
            "to": t.dest,
            "label": wf.label(t.dest),
            "outcome": t.outcome,
            "gate": list(t.gate),
            "reason_required": t.reason_required,
        }
        for t in wf.transitions_from(p.state)
        if t.kind != "review-due"
    ]
    data["partners"] = [
        {
            "id": x.id,
            "name": x.name,
            "sector": x.sector,
            "contact": x.contact_name,
            "email": x.contact_email,
            "can_decide": x.can_decide,
            "active": x.active,
        }
        for x in s.exec(
            select(m.Partner).where(m.Partner.partnership_id == p.id).order_by(col(m.Partner.id))
        )
    ]
    return data


def _slug(s: Session, partnership_id: int | None) -> str | None:
    if partnership_id is None:
        return None
    other = s.get(m.Partnership, partnership_id)
    return other.slug if other else None


def partnership_text(d: dict[str, Any]) -> str:
    where = (
        f"step {d['step']['number']} {d['step']['name']} (module {d['module']['id']} "
        f"{d['module']['name']})"
        if d["step"]
        else f"closed: {d['final_state']}"
    )
    lines = [
        f"{d['id']}: {d['name']}",
        f"  {where}",
        f"  workflow {d['workflow']['name']} {d['workflow']['version']}, version {d['version']}",
    ]
    if d.get("parent"):
        lines.append(f"  replica of {d['parent']}")
    if d["gate_debt_open"]:
        lines.append(
            f"  gate debt: {d['gate_debt_open']} open criteria ('mspflow debt list {d['id']}')"
        )
    if d.get("partners"):
        lines.append("  partners: " + ", ".join(x["name"] for x in d["partners"]))
    if d.get("criteria"):
        met = sum(c["state"] != "unmet" for c in d["criteria"])
        lines.append(f"  exit gate: {met} of {len(d['criteria'])} criteria met or waived")
        for c in d["criteria"]:
            mark = {"met": "ok", "waived": "WAIVED", "unmet": "--"}[c["state"]]
            lines.append(f"    [{mark:>6}] task {c['task']} {c['title']}")
            if c["state"] == "unmet":
                lines.append(f"             {c['detail']}; {c['fix']}")
            elif c["state"] == "waived":
                lines.append(f"             waived by {c['waived_by']}")
    if d.get("moves"):
        lines.append(
            "  moves: "
            + "; ".join(
                f"{mv['kind']} -> {mv['label']}" + (f" ({mv['outcome']})" if mv["outcome"] else "")
                for mv in d["moves"]
                if mv["kind"] != "revisit"
            )
        )
    return "\n".join(lines)


def event_dict(e: m.HistoryEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "partnership": e.partnership,
        "at": e.at,
        "actor": e.actor,
        "role": e.role,
        "kind": e.kind,
        "trigger": e.trigger,
        "from": e.from_state,
        "to": e.to_state,
        "reason": e.reason,
        "waived": json.loads(e.waived),
        "evidence": json.loads(e.evidence),
        "definition": e.definition,
        "data": json.loads(e.data),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def _label(wf: Workflow | None, state: str | None) -> str:
    if state is None:
        return "-"
    if wf is not None and state in wf.states:
        return wf.label(state)
    return state


def _head(e: m.HistoryEvent, wf: Workflow | None) -> str:
    if e.from_state is None:
        move = f"-> {_label(wf, e.to_state)}"
    elif e.from_state != e.to_state:
        move = f"{_label(wf, e.from_state)} -> {_label(wf, e.to_state)}"
    else:
        move = f"at {_label(wf, e.to_state)}"
    return f"#{e.seq} {e.at[:19]}Z {e.actor} ({e.role}) {e.kind}: {move}"


def _ids(ids: list[Any]) -> str:
    shown = ", ".join(f"#{i}" for i in ids[:5])
    return shown + (f", ... (+{len(ids) - 5})" if len(ids) > 5 else "")


def evidence_refs(value: dict[str, Any]) -> str:
    """The records a criterion's evidence names, compactly (``partner #1, #2``)."""
    parts: list[str] = []
    record = value.get("record")
    for key, v in value.items():
        if key in ("task", "found", "count") or (key == "record" and "fields" in value):
            continue
        if key == "fields" and isinstance(v, list):
            parts.append(f"{record or 'fields'}: " + ", ".join(map(str, v)))
        elif isinstance(v, list):
            parts.append(f"{key} {_ids(v)}")
        elif isinstance(v, dict):
            inner = [
                f"{name} {_ids(ids if isinstance(ids, list) else [ids])}"
                for name, ids in v.items()
            ]
            parts.append(f"{key}: " + "; ".join(inner))
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            parts.append(f"{key} #{v}")
        else:
            parts.append(f"{key} {v}")
    return ", ".join(parts)


def event_line(e: m.HistoryEvent, wf: Workflow | None = None) -> str:
    """One event on one line: who moved what where, why, on what evidence."""
    parts = [_head(e, wf)]
    if e.reason:
        parts.append(f"reason: {e.reason}")
    waived = json.loads(e.waived)
    if waived:
        parts.append("waived: " + ", ".join(waived))
    evidence = json.loads(e.evidence)
    if evidence:
        parts.append(
            "evidence: "
            + ", ".join(
                f"{k} ({v.get('task')})" if isinstance(v, dict) else str(k)
                for k, v in evidence.items()
            )
        )
    data = json.loads(e.data)
    if isinstance(data.get("gate_debt"), list) and data["gate_debt"]:
        parts.append(f"gate debt: {len(data['gate_debt'])} criteria")
    elif data.get("gate_debt") is True and data.get("step"):
        parts.append(f"settles gate debt of {_label(wf, data['step'])}")
    for key in ("outcome", "replica", "schedule", "occurrence"):
        if data.get(key):
            parts.append(f"{key}: {data[key]}")
    return "; ".join(parts)


def timeline(events: Iterable[m.HistoryEvent], wf: Workflow | None = None) -> list[str]:
    """A partnership's history for people: one heading per event, then its details.

    Waivers are shown where they took effect (on the move that passed the gate)
    with the reason and author recorded by the waive event before it.
    """
    lines: list[str] = []
    waivers: dict[tuple[str, str], m.HistoryEvent] = {}
    for e in events:
        head = _head(e, wf)
        lines.append(head + (f"  reason: {e.reason}" if e.reason else ""))
        data = json.loads(e.data)
        evidence = json.loads(e.evidence)
        waived = json.loads(e.waived)
        if e.kind == "waive":
            step = data.get("step") or e.from_state or ""
            for c in waived:
                waivers[(step, c)] = e
            task = f" (task {data['task']})" if data.get("task") else ""
            what = "gate debt of" if data.get("gate_debt") is True else "a criterion of"
            lines.append(f"    waived: {', '.join(waived)}{task}, {what} {_label(wf, step)}")
            continue
        for key, v in evidence.items():
            v = v if isinstance(v, dict) else {}
            word = "backfilled" if e.kind == "backfill" else "evidence"
            refs = evidence_refs(v)
            lines.append(
                f"    {word:<10} {v.get('task', '?'):<5} {key}: {v.get('found', '')}"
                + (f" [{refs}]" if refs else "")
            )
        for c in waived:
            by = waivers.get((e.from_state or "", c))
            task = _task(wf, e.from_state, c)
            source = f" by {by.actor} [#{by.seq}]: {by.reason}" if by else " (no waive event)"
            lines.append(f"    {'waived':<10} {task:<5} {c}{source}")
        debt = data.get("gate_debt")
        if isinstance(debt, list) and debt:
            steps = sorted({int(str(d).split(":", 1)[0]) for d in debt if ":" in str(d)})
            span = f"steps {steps[0]}-{steps[-1]}" if len(steps) > 1 else f"step {steps[0]}"
            lines.append(
                f"    gate debt  {len(debt)} criteria of {span} not evidenced "
                f"('mspflow debt list {e.partnership}')"
            )
        for key in ("outcome", "note", "replica", "parent"):
            if data.get(key):
                lines.append(f"    {key:<10} {data[key]}")
        if e.kind == "review-due" and data.get("occurrence"):
            lines.append(f"    schedule   {data.get('schedule')} due {data['occurrence']}")
        if e.from_state != e.to_state:
            waivers = {}  # a waiver holds for one visit of a step
    return lines


def _task(wf: Workflow | None, state: str | None, criterion: str) -> str:
    if wf is None or state is None or wf.find_step(state) is None:
        return "?"
    c = wf.step(state).criterion(criterion)
    return c.task if c else "?"
