"""How partnerships and their history are shown: JSON-ready dicts and text.

The keys of these dicts are the stable ``--json`` interface documented in
README.md; add keys freely, never rename or remove one.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, func, select

from mspflow.definition.model import Workflow
from mspflow.engine import CriterionStatus, PartnershipService, definition_for
from mspflow.store import models as m

__all__ = ["event_dict", "event_line", "partnership_dict", "partnership_text"]


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


def event_line(e: m.HistoryEvent, wf: Workflow | None = None) -> str:
    def label(state: str | None) -> str:
        if state is None:
            return "-"
        if wf is not None and state in wf.states:
            return wf.label(state)
        return state

    move = (
        f"{label(e.from_state)} -> {label(e.to_state)}"
        if e.from_state != e.to_state
        else f"at {label(e.to_state)}"
    )
    parts = [f"#{e.seq} {e.at[:19]}Z {e.actor} ({e.role}) {e.kind}: {move}"]
    if e.reason:
        parts.append(f"reason: {e.reason}")
    waived = json.loads(e.waived)
    if waived:
        parts.append("waived: " + ", ".join(waived))
    evidence = json.loads(e.evidence)
    if evidence:
        parts.append(
            "evidence: " + ", ".join(f"{k} ({v.get('task')})" for k, v in evidence.items())
        )
    data = json.loads(e.data)
    if data.get("gate_debt"):
        parts.append(f"gate debt: {len(data['gate_debt'])} criteria")
    if data.get("outcome"):
        parts.append(f"outcome: {data['outcome']}")
    if data.get("replica"):
        parts.append(f"replica: {data['replica']}")
    return "; ".join(parts)
