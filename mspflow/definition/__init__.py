"""Workflow definitions: the framework as data, loaded into frozen dataclasses."""

from __future__ import annotations

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
