"""Present a workflow: a plain dict (for --json), an outline, Mermaid and DOT."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mspflow.definition.model import Workflow

__all__ = ["to_dict", "to_dot", "to_markdown", "to_mermaid", "to_outline"]


def to_dict(wf: Workflow) -> dict[str, Any]:
    """The workflow as JSON-ready data; keys are stable (documented in README.md)."""
    return {
        "name": wf.name,
        "version": wf.version,
        "title": wf.title,
        "content_hash": wf.content_hash,
        "initial": wf.initial,
        "modules": [
            {
                "id": m.id,
                "name": m.name,
                "description": m.description,
                "steps": list(m.steps),
                "source": m.cites or None,
            }
            for m in wf.modules
        ],
        "steps": [
            {
                "number": s.number,
                "id": s.id,
                "name": s.name,
                "module": s.module,
                "description": s.description,
                "source": s.cites or None,
                "tasks": [{"id": t.id, "name": t.name, "source": t.cites or None} for t in s.tasks],
                "gate": [
                    {
                        "id": c.id,
                        "task": c.task,
                        "title": c.title,
                        "check": c.check,
                        "params": dict(c.params),
                        "fix": c.fix,
                        "since": c.since,
                        "within": c.within,
                        "source": c.cites or None,
                    }
                    for c in s.gate
                ],
            }
            for s in wf.steps
        ],
        "tasks": [{"id": t.id, "name": t.name, "step": t.step} for t in wf.tasks],
        "final_states": [{"id": f.id, "name": f.name} for f in wf.final_states],
        "transitions": [
            {
                "kind": t.kind,
                "from": t.source,
                "to": t.dest,
                "gate": list(t.gate),
                "reason_required": t.reason_required,
                "task": t.task or None,
                "outcome": t.outcome,
                "source": t.cites or None,
            }
            for t in wf.transitions
        ],
        "outcomes": [
            {
                "id": o.id,
                "name": o.name,
                "to": o.dest,
                "final": o.final,
                "reasons": list(o.reasons),
                "source": o.cites or None,
            }
            for o in wf.outcomes
        ],
        "schedule_kinds": [
            {
                "id": k.id,
                "name": k.name,
                "task": k.task,
                "cadences": list(k.cadences),
                "default": k.default,
                "minimum": k.minimum,
                "record": k.record,
                "derived": k.derived,
                "source": k.cites or None,
            }
            for k in wf.schedule_kinds
        ],
        "entry_steps": list(wf.entry_steps),
        "scale_up_entry": list(wf.scale_up_entry),
    }


def to_outline(wf: Workflow) -> str:
    lines = [f"{wf.name} {wf.version}: {wf.title}"]
    for m in wf.modules:
        lines.append(f"Module {m.id} {m.name}")
        for n in m.steps:
            s = wf.step(n)
            lines.append(f"  Step {s.number} {s.name} [{s.id}]")
            for t in s.tasks:
                lines.append(f"    task {t.id} {t.name}")
            if s.gate:
                lines.append("    exit gate:")
                for c in s.gate:
                    lines.append(f"      - ({c.task}) {c.title} [{c.id}]")
            moves = [t for t in wf.transitions_from(s.id) if t.kind != "revisit"]
            for move in moves:
                label = f" ({move.label})" if move.label else ""
                lines.append(f"    {move.kind} -> {wf.label(move.dest)}{label}")
    back = sorted({wf.label(t.dest) for t in wf.transitions if t.kind == "revisit"})
    if back:
        lines.append(f"Revisits (reason required): back to {', '.join(back)}")
    lines.append("Step-12 outcomes:")
    for o in wf.outcomes:
        end = " (final)" if o.final else ""
        lines.append(f"  {o.id}: {o.name} -> {wf.label(o.dest)}{end}")
        if o.reasons:
            lines.append(f"    reasons: {', '.join(o.reasons)}")
    lines.append("Schedules:")
    for k in wf.schedule_kinds:
        least = f", at least {k.minimum}" if k.minimum else ""
        lines.append(
            f"  {k.id} (task {k.task}): {', '.join(k.cadences)}; default {k.default}{least}"
        )
    return "\n".join(lines)


def _lines(cites: str) -> str:
    if not cites:
        return "no source"
    return f"line {cites}" if cites.strip().isdigit() else f"lines {cites}"


def _fresh(since: str | None, within: str | None) -> str:
    parts = {"visit": "since this visit of the step", "cycle": "since this pass round the loop"}
    out = [parts[since]] if since else []
    if within:
        out.append(f"within {within}")
    return ", ".join(out) or "ever"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def to_markdown(wf: Workflow, *, guideline: str = "the guideline") -> str:
    """The framework as a Markdown document: every module, step, task, criterion,
    transition, outcome and schedule kind, each with the lines of ``guideline`` it
    rests on (its ``source``)."""
    out = [
        f"# {wf.title}",
        "",
        f"Definition `{wf.name}`, version {wf.version} (content hash `{wf.content_hash[:16]}`).",
        f"Line numbers refer to {guideline}. Generated by "
        f"`mspflow workflow show {wf.name} --format markdown`; do not edit by hand.",
        "",
        wf.description,
        "",
    ]
    for m in wf.modules:
        out += [f"## Module {m.id}: {m.name}", "", f"{m.description} ({_lines(m.cites)})", ""]
        for n in m.steps:
            s = wf.step(n)
            out += [
                f"### Step {s.number}: {s.name}",
                "",
                f"{s.description} ({_lines(s.cites)})",
                "",
            ]
            out += ["Tasks:", ""]
            out += [f"- {t.id} {t.name} ({_lines(t.cites)})" for t in s.tasks]
            out.append("")
            if s.gate:
                out += [
                    "| Criterion | Task | Asks for | Evidence counted | Source |",
                    "|---|---|---|---|---|",
                ]
                out += [
                    f"| `{c.id}` | {c.task} | {_cell(c.title)} | {_fresh(c.since, c.within)} "
                    f"| {_lines(c.cites)} |"
                    for c in s.gate
                ]
                out.append("")
    out += [
        "## Transitions",
        "",
        "| Kind | From | To | Gate | Reason | Task | Source |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in wf.transitions:
        dest = wf.label(t.dest) + (f" ({t.outcome})" if t.outcome else "")
        gate = ", ".join(f"`{c}`" for c in t.gate) or "none"
        reason = "required" if t.reason_required else "optional"
        out.append(
            f"| {t.kind} | {wf.label(t.source)} | {dest} | {gate} | {reason} "
            f"| {t.task or ''} | {_lines(t.cites)} |"
        )
    out += ["", "## Outcomes of moving on", ""]
    for o in wf.outcomes:
        reasons = f"; reasons: {', '.join(o.reasons)}" if o.reasons else ""
        out.append(f"- `{o.id}` {o.name} → {wf.label(o.dest)}{reasons} ({_lines(o.cites)})")
    out += [
        "",
        "## Schedules",
        "",
        "| Kind | Task | Suggested cadences | Minimum | Expects | Source |",
        "|---|---|---|---|---|---|",
    ]
    for k in wf.schedule_kinds:
        out.append(
            f"| `{k.id}` {k.name} | {k.task} | {', '.join(k.cadences)} | {k.minimum or 'none'} "
            f"| {k.record or ''} | {_lines(k.cites)} |"
        )
    if wf.auto_triggers:
        out += ["", "## Scheduled moves", ""]
        for a in wf.auto_triggers:
            sources = ", ".join(wf.label(x) for x in a.sources)
            out.append(
                f"- `{a.id}`: when {' or '.join(a.schedules)} falls due, from {sources} to "
                f"{wf.label(a.dest)}; the unmet criteria of the steps it leaves become gate "
                f"debt ({_lines(a.cites)})"
            )
    return "\n".join(out) + "\n"


def _edges(wf: Workflow) -> dict[tuple[str, str], list[str]]:
    """Group transitions into one labelled edge per (source, dest) pair."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in wf.transitions:
        edges[(t.source, t.dest)].append(t.outcome or t.kind)
    return edges


def _node(state: str) -> str:
    return state.replace("-", "_")


def to_mermaid(wf: Workflow) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {_node(wf.initial)}"]
    for m in wf.modules:
        lines.append(f'    state "{m.id} {m.name}" as module_{m.id} {{')
        for n in m.steps:
            s = wf.step(n)
            lines.append(f'        state "{s.number} {s.name}" as {_node(s.id)}')
        lines.append("    }")
    for f in wf.final_states:
        lines.append(f'    state "{f.name}" as {_node(f.id)}')
        lines.append(f"    {_node(f.id)} --> [*]")
    for (src, dest), labels in _edges(wf).items():
        lines.append(f"    {_node(src)} --> {_node(dest)}: {', '.join(labels)}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(wf: Workflow) -> str:
    lines = [
        f"digraph {_dot_quote(wf.name)} {{",
        "  rankdir=LR;",
        "  node [shape=box, style=rounded];",
    ]
    for m in wf.modules:
        lines.append(f"  subgraph cluster_{m.id} {{")
        lines.append(f"    label={_dot_quote(f'Module {m.id}: {m.name}')};")
        for n in m.steps:
            s = wf.step(n)
            lines.append(f"    {_node(s.id)} [label={_dot_quote(f'{s.number} {s.name}')}];")
        lines.append("  }")
    for f in wf.final_states:
        lines.append(f"  {_node(f.id)} [label={_dot_quote(f.name)}, shape=doublecircle];")
    styles = {"revisit": "dashed", "review-due": "dotted"}
    for (src, dest), labels in _edges(wf).items():
        style = styles.get(labels[0], "solid")
        label = _dot_quote(", ".join(labels))
        lines.append(f"  {_node(src)} -> {_node(dest)} [label={label}, style={style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
