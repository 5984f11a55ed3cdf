"""Read models as text for a terminal: partnerships, moves, the history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mspflow.services.readmodels import (
    EventView,
    MigrateResult,
    MoveResult,
    PartnershipDetail,
    PartnershipView,
)

__all__ = [
    "event_line", "evidence_refs", "migrated", "moved", "partnership_text", "timeline", "where",
]  # fmt: skip


def where(p: PartnershipView) -> str:
    if p.step is None:
        return f"closed: {p.final_state}"
    return f"step {p.step.number} {p.step.name}"


def partnership_text(p: PartnershipView) -> str:
    here = (
        f"step {p.step.number} {p.step.name} (module {p.module.id} {p.module.name})"
        if p.step and p.module
        else f"closed: {p.final_state}"
    )
    lines = [
        f"{p.id}: {p.name}",
        f"  {here}",
        f"  workflow {p.workflow.name} {p.workflow.version}, version {p.version}",
    ]
    if p.parent:
        lines.append(f"  replica of {p.parent}")
    if p.gate_debt_open:
        lines.append(f"  gate debt: {p.gate_debt_open} open criteria ('mspflow debt list {p.id}')")
    if not isinstance(p, PartnershipDetail):
        return "\n".join(lines)
    if p.partners:
        lines.append("  partners: " + ", ".join(x.name for x in p.partners))
    if p.criteria:
        met = sum(c.state != "unmet" for c in p.criteria)
        lines.append(f"  exit gate: {met} of {len(p.criteria)} criteria met or waived")
        for c in p.criteria:
            mark = {"met": "ok", "waived": "WAIVED", "unmet": "--"}[c.state]
            lines.append(f"    [{mark:>6}] task {c.task} {c.title}")
            if c.state == "unmet":
                lines.append(f"             {c.detail}; {c.fix}")
            elif c.state == "waived":
                lines.append(f"             waived by {c.waived_by}")
    late = [x for x in p.milestones if x.overdue]
    if p.milestones:
        done = sum(x.done is not None for x in p.milestones)
        lines.append(
            f"  milestones: {done} of {len(p.milestones)} reached"
            + (f", {len(late)} overdue" if late else "")
        )
        for x in late:
            why = f"; {x.delay}" if x.delay else "; no reason for the delay recorded"
            lines.append(f"    [  LATE] {x.name}: due {x.due}{why}")
    for i in p.indicators:
        if i.latest is None:
            now = "no value measured yet"
        else:
            share = f" ({i.progress:.0%} of the way)" if i.progress is not None else ""
            now = f"{_num(i.latest)} on {i.measured_on}{share}"
        unit = f" {i.unit}" if i.unit else ""
        lines.append(
            f"  indicator {i.code}: baseline {_num(i.baseline)}, target {_num(i.target)}{unit}; "
            + now
        )
    if p.moves:
        lines.append(
            "  moves: "
            + "; ".join(
                f"{mv.kind} -> {mv.label}" + (f" ({mv.outcome})" if mv.outcome else "")
                for mv in p.moves
                if mv.kind != "revisit"
            )
        )
    return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:g}"


def migrated(results: list[MigrateResult]) -> str:
    lines = []
    for r in results:
        if not r.changed:
            lines.append(f"{r.id}: already on {r.to_version}")
            continue
        verb = "would move" if r.dry_run else "moved"
        lines.append(f"{r.id}: {verb} from {r.from_version} to {r.to_version}")
        for c in r.unmet:
            lines.append(f"    becomes unmet: task {c.task} {c.title}: {c.detail}")
        for d in r.retired_debt:
            lines.append(f"    gate debt retired (no such criterion now): {d}")
    return "\n".join(lines) or "no partnership to migrate"


def moved(result: MoveResult) -> str:
    extra = f" (waived: {', '.join(result.waived)})" if result.waived else ""
    p = result.partnership
    return f"{p.id}: now at {where(p)}{extra} [event #{result.event}]"


def _head(e: EventView) -> str:
    if e.from_state is None:
        move = f"-> {e.to_label}"
    elif e.from_state != e.to_state:
        move = f"{e.from_label} -> {e.to_label}"
    else:
        move = f"at {e.to_label}"
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
                f"{name} {_ids(ids if isinstance(ids, list) else [ids])}" for name, ids in v.items()
            ]
            parts.append(f"{key}: " + "; ".join(inner))
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            parts.append(f"{key} #{v}")
        else:
            parts.append(f"{key} {v}")
    return ", ".join(parts)


def event_line(e: EventView) -> str:
    """One event on one line: who moved what where, why, on what evidence."""
    parts = [_head(e)]
    if e.reason:
        parts.append(f"reason: {e.reason}")
    if e.waived:
        parts.append("waived: " + ", ".join(e.waived))
    if e.evidence:
        parts.append(
            "evidence: "
            + ", ".join(
                f"{k} ({v.get('task')})" if isinstance(v, dict) else str(k)
                for k, v in e.evidence.items()
            )
        )
    data = e.data
    if isinstance(data.get("gate_debt"), list) and data["gate_debt"]:
        parts.append(f"gate debt: {len(data['gate_debt'])} criteria")
    elif data.get("gate_debt") is True and data.get("step"):
        parts.append(f"settles gate debt of {e.label(data['step'])}")
    for key in ("outcome", "replica", "schedule", "occurrence", "user"):
        if data.get(key):
            parts.append(f"{key}: {data[key]}")
    return "; ".join(parts)


def timeline(events: Iterable[EventView]) -> list[str]:
    """A partnership's history for people: one heading per event, then its details.

    Waivers are shown where they took effect (on the move that passed the gate)
    with the reason and author recorded by the waive event before it.
    """
    lines: list[str] = []
    waivers: dict[tuple[str, str], EventView] = {}
    for e in events:
        head = _head(e)
        lines.append(head + (f"  reason: {e.reason}" if e.reason else ""))
        data = e.data
        if e.kind == "waive":
            step = data.get("step") or e.from_state or ""
            for c in e.waived:
                waivers[(step, c)] = e
            task = f" (task {data['task']})" if data.get("task") else ""
            what = "gate debt of" if data.get("gate_debt") is True else "a criterion of"
            lines.append(f"    waived: {', '.join(e.waived)}{task}, {what} {e.label(step)}")
            continue
        if e.kind in ("member-add", "member-remove"):
            org = f" for {data['partner']}" if data.get("partner") else ""
            verb = "joined" if e.kind == "member-add" else "left"
            lines.append(f"    member     {data.get('user')} ({data.get('role')}) {verb}{org}")
            continue
        for key, v in e.evidence.items():
            v = v if isinstance(v, dict) else {}
            word = "backfilled" if e.kind == "backfill" else "evidence"
            refs = evidence_refs(v)
            lines.append(
                f"    {word:<10} {v.get('task', '?'):<5} {key}: {v.get('found', '')}"
                + (f" [{refs}]" if refs else "")
            )
        for c in e.waived:
            by = waivers.get((e.from_state or "", c))
            task = e.tasks.get(c, "?")
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
