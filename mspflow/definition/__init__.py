"""Workflow definitions: the framework as data, loaded into frozen dataclasses.

The names below are looked up on first use, so that a module that needs only
the registry of evidence kinds (:mod:`.kinds`, imported by ``mspflow --help``)
does not load the YAML parser.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mspflow.definition.loader import load_workflow, parse_workflow
    from mspflow.definition.model import Criterion, Step, Transition, Workflow
    from mspflow.definition.registry import bundled_dir, bundled_workflows, find_workflow

__all__ = [
    "Criterion",
    "Step",
    "Transition",
    "Workflow",
    "bundled_dir",
    "bundled_workflows",
    "find_workflow",
    "load_workflow",
    "parse_workflow",
]

_WHERE = {
    "Criterion": "model",
    "Step": "model",
    "Transition": "model",
    "Workflow": "model",
    "bundled_dir": "registry",
    "bundled_workflows": "registry",
    "find_workflow": "registry",
    "load_workflow": "loader",
    "parse_workflow": "loader",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mspflow.definition' has no attribute {name!r}")
    return getattr(import_module(f"mspflow.definition.{module}"), name)
