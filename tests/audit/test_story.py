"""The audit epilogue the demo ends with."""

from __future__ import annotations

import json
from pathlib import Path

from mspflow.auth import Actor
from mspflow.cli.demo import audit_epilogue
from mspflow.services import Mspflow
from tests.audit.conftest import Portfolio


def test_epilogue_verifies_exports_and_checks(portfolio: Portfolio, tmp_path: Path) -> None:
    said: list[str] = []
    engine = portfolio.engine()
    try:
        audit_epilogue(
            Mspflow(engine=engine, actor=Actor("ivo", "auditor")), tmp_path / "audit", said.append
        )
    finally:
        engine.dispose()
    events = portfolio.events()
    text = "\n".join(said)
    assert f"the hash chain of {len(events)} events holds" in text
    assert f"anchor: {events[-1].seq}:{events[-1].hash}" in text
    xes, ocel = tmp_path / "audit" / "history.xes", tmp_path / "audit" / "history.ocel.json"
    assert f"export xes: {xes} (3 partnerships, {len(events)} events)" in text
    assert f"export ocel: {ocel} (3 partnerships, {len(events)} events, " in text
    assert len(json.loads(ocel.read_text())["events"]) == len(events)
    assert xes.read_text().count("<trace>") == 3
    assert "conformance: every move of 3 partnerships" in text


def test_epilogue_lists_deviations(portfolio: Portfolio, tmp_path: Path) -> None:
    portfolio.sql("UPDATE partnership SET state = 'reviewing' WHERE slug = 'png'")
    said: list[str] = []
    engine = portfolio.engine()
    try:
        audit_epilogue(Mspflow(engine=engine, actor=Actor("ivo", "auditor")), tmp_path, said.append)
    finally:
        engine.dispose()
    assert "  conformance: 1 deviation(s)" in said
    assert any(line.startswith("    png current state: state-drift") for line in said)
