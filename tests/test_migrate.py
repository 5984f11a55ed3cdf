"""Definition versions: partnerships pinned to 2018.1 keep running on it; ``partnership
migrate`` moves one (or all) onto 2018.2 with a history event, the dry run naming what
becomes unmet; the audit still verifies and conforms. On both backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mspflow.definition import parse_workflow
from mspflow.errors import InvalidInput, NotFound
from mspflow.services import Mspflow
from mspflow.walk import WALK, record_piece, record_step

OLD_TEXT = (Path(__file__).parent / "definition/versions/msp-12-step-2018.1.yaml").read_text(
    encoding="utf-8"
)
OLD = parse_workflow(OLD_TEXT, "msp-12-step-2018.1.yaml")


def on_old(service: Mspflow, slug: str, step: int) -> str:
    """A partnership created on version 2018.1 and walked to ``step`` there."""
    service.partnerships.create(name=slug, slug=slug, workflow=OLD, definition_text=OLD_TEXT)
    for n in range(1, step):
        record_step(service, slug, n)
        service.partnerships.advance(partnership=slug)
    return slug


def test_migrate_one_with_a_dry_run_first(service: Mspflow) -> None:
    ref = on_old(service, "water", 7)
    for criterion in ("meetings-held", "health-checked"):  # all that 2018.1's step 7 asks
        record_piece(service, ref, WALK[7][criterion])
    ps, versions = service.partnerships, service.versions
    assert ps.get(partnership=ref).workflow.version == "2018.1"
    dry = versions.migrate(partnership=ref, to="2018.2", dry_run=True)
    assert (dry.dry_run, dry.changed, dry.event) == (True, True, None)
    assert dry.from_version == "2018.1" and dry.to_version == "2018.2"
    # 2018.2 asks step 7 for an action plan of this pass; meetings recorded stay met.
    assert [c.criterion for c in dry.unmet] == ["action-plan-current"]
    before = ps.history(partnership=ref).events
    assert ps.get(partnership=ref).workflow.version == "2018.1"  # nothing written
    done = versions.migrate(partnership=ref, to="2018.2")
    assert done.event is not None and not done.dry_run
    after = ps.history(partnership=ref).events
    assert len(after) == len(before) + 1
    event = after[-1]
    assert event.kind == "migrate" and event.from_state == event.to_state == "delivering"
    assert event.data["from"].startswith("msp-12-step@2018.1#")
    assert event.data["to"].startswith("msp-12-step@2018.2#")
    assert event.data["unmet"] == ["action-plan-current"]
    view = ps.get(partnership=ref)
    assert view.workflow.version == "2018.2" and view.state == "delivering"
    again = versions.migrate(partnership=ref, to="2018.2")
    assert not again.changed and again.event is None
    assert service.audit.verify().events == len(after)
    assert service.audit.conformance().conforms


def test_migrate_all_skips_closed_and_current_ones(service: Mspflow) -> None:
    on_old(service, "a", 3)
    on_old(service, "b", 1)
    service.partnerships.create(name="Current", slug="current")
    dry = service.versions.migrate_all(to="2018.2", workflow="msp-12-step", dry_run=True)
    assert [r.id for r in dry] == ["a", "b"]
    # Step 3 gains a criterion (rewards and risks per partner, 3.2).
    assert "rewards-and-risks-weighed" in [c.criterion for c in dry[0].unmet]
    done = service.versions.migrate_all(to="2018.2", workflow="msp-12-step")
    assert [r.id for r in done] == ["a", "b"] and all(r.event for r in done)
    assert service.versions.migrate_all(to="2018.2", workflow="msp-12-step") == []
    assert service.audit.conformance().conforms


def test_refusals(service: Mspflow) -> None:
    on_old(service, "water", 2)
    with pytest.raises(NotFound, match=r"no version '9\.9'") as info:
        service.versions.migrate(partnership="water", to="9.9")
    assert "2018.1" in str(info.value.hint) and "2018.2" in str(info.value.hint)
    auditor = service.as_user("ivo")
    with pytest.raises(Exception, match="migrate partnerships"):
        auditor.versions.migrate(partnership="water", to="2018.2")
    text = OLD_TEXT.replace("id: planning\n", "id: planning-x\n").replace(
        'version: "2018.1"', 'version: "2018.1-renamed"'
    )
    renamed = parse_workflow(text, "renamed")
    service.partnerships.create(
        name="P4", slug="p4", workflow=renamed, definition_text=text, at_step="4"
    )
    with pytest.raises(InvalidInput, match=r"which version 2018\.2 of msp-12-step does not have"):
        service.versions.migrate(partnership="p4", to="2018.2")


@pytest.fixture
def run(cli: Callable[..., Result], db_url: str, service: Mspflow) -> Callable[..., Result]:
    def go(*args: str, code: int = 0) -> Result:
        result = cli("--db", db_url, "--as", "ana", *args)
        assert result.exit_code == code, result.output
        return result

    return go


def test_the_command(run: Callable[..., Result], service: Mspflow) -> None:
    on_old(service, "water", 7)
    out = run("partnership", "migrate", "water", "--to", "2018.2", "--dry-run").output
    assert "water: would move from 2018.1 to 2018.2" in out
    assert "becomes unmet: task 7.2 an action plan drawn up in this pass" in out
    assert "2018.1" in run("partnership", "show", "water").output
    run("partnership", "migrate", "--to", "2018.2", code=2)  # neither P nor --all
    run("partnership", "migrate", "water", "--all", "--to", "2018.2", code=2)
    out = run("partnership", "migrate", "water", "--to", "1999", code=4).output
    assert "[--to]" in out
    run("partnership", "migrate", "--all", "--to", "2018.2")
    assert "2018.2" in run("partnership", "show", "water").output
    assert '"conforms": true' in run("audit", "conformance", "--json").output
