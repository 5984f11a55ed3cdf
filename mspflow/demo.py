"""The demonstration story behind ``mspflow demo``."""

from __future__ import annotations

from collections.abc import Callable

from mspflow.definition import find_workflow
from mspflow.definition.render import to_outline

__all__ = ["run_demo"]


def run_demo(say: Callable[[str], None]) -> None:
    wf = find_workflow("msp-12-step")
    say(
        f"Validated {wf.source}: {len(wf.modules)} modules, {len(wf.steps)} steps, "
        f"{len(wf.tasks)} tasks, {sum(len(s.gate) for s in wf.steps)} gate criteria, "
        f"{len(wf.transitions)} transitions (hash {wf.content_hash[:12]})"
    )
    say(to_outline(wf))
