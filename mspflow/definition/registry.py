"""Where the bundled workflow definitions live, installed or in a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from mspflow.definition.loader import load_workflow
from mspflow.definition.model import Workflow
from mspflow.errors import NotFound

__all__ = ["bundled_dir", "bundled_workflows", "find_workflow"]


def bundled_dir() -> Path:
    """The folder of shipped definitions.

    In a wheel it is ``mspflow/workflows`` (see pyproject.toml); in a source
    checkout or editable install it is the repository's top-level ``workflows/``.
    """
    package = Path(__file__).resolve().parent.parent
    inside = package / "workflows"
    if inside.is_dir():
        return inside
    return package.parent / "workflows"


def bundled_files() -> list[Path]:
    folder = bundled_dir()
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


@cache
def _load(path: str, mtime: float) -> Workflow:
    return load_workflow(path)


def bundled_workflows() -> list[Workflow]:
    return [_load(str(p), p.stat().st_mtime) for p in bundled_files()]


def find_workflow(name: str) -> Workflow:
    """A bundled workflow by name, or a definition file by path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_workflow(path)
    for wf in bundled_workflows():
        if wf.name == name:
            return wf
    known = ", ".join(wf.name for wf in bundled_workflows()) or "none"
    raise NotFound(f"no workflow named '{name}'", hint=f"bundled workflows: {known}")
