"""The workflow definitions kept in the database, each compiled once per process.

A partnership is pinned to the exact definition it was created on: its text is
stored under its content hash, and the hash names that content for ever, so a
definition parsed once can serve every later operation of the process.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from mspflow.definition.loader import compile_stored
from mspflow.definition.model import Workflow
from mspflow.errors import NotFound
from mspflow.store import models as m

__all__ = ["cached", "definition_by_hash", "definition_for", "forget", "label", "store_definition"]

_PARSED: dict[str, Workflow] = {}


def label(wf: Workflow) -> str:
    """How history events name the definition they were recorded under."""
    return f"{wf.name}@{wf.version}#{wf.content_hash[:16]}"


def store_definition(session: Session, wf: Workflow, text: str, now: datetime) -> None:
    if session.get(m.WorkflowDefinition, wf.content_hash) is None:
        session.add(
            m.WorkflowDefinition(
                content_hash=wf.content_hash,
                name=wf.name,
                version=wf.version,
                source_text=text,
                stored_at=now,
            )
        )
        session.flush()
    _PARSED.setdefault(wf.content_hash, wf)


def _compile(content_hash: str, text: str, name: str) -> Workflow:
    """Compile a stored definition once per process: its hash names its content."""
    wf = _PARSED.get(content_hash)
    if wf is None:
        wf = compile_stored(text, content_hash, f"<stored {name} {content_hash[:12]}>")
        _PARSED[content_hash] = wf
    return wf


def forget() -> None:
    """Drop every compiled definition (tests that count compilations start here)."""
    _PARSED.clear()


def cached(content_hash: str) -> Workflow | None:
    """The definition with this hash if this process has compiled it already."""
    return _PARSED.get(content_hash)


def definition_by_hash(session: Session, content_hash: str, *, owner: str = "") -> Workflow:
    """The stored definition with this content hash, compiled once per process."""
    found = _PARSED.get(content_hash)
    if found is not None:
        return found
    row = session.get(m.WorkflowDefinition, content_hash)
    if row is None:
        raise NotFound(f"{owner}its definition {content_hash[:12]} is missing")
    return _compile(row.content_hash, row.source_text, row.name)


def definition_for(session: Session, p: m.Partnership) -> Workflow:
    """The definition a partnership is pinned to, from the copy kept in the database."""
    return definition_by_hash(session, p.workflow_hash, owner=f"partnership {p.slug}: ")
