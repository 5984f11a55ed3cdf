"""`mspflow workflow ...` and the packaging that ships the definitions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import REPO

Cli = Callable[..., Result]


def test_list_json(cli: Cli) -> None:
    result = cli("workflow", "list", "--json")
    assert result.exit_code == 0
    names = [w["name"] for w in json.loads(result.output)]
    assert "msp-12-step" in names


def test_show_json_counts_and_task_ids(cli: Cli) -> None:
    result = cli("workflow", "show", "msp-12-step", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["modules"]) == 5
    assert len(data["steps"]) == 12
    assert len(data["tasks"]) == 32
    task_ids = {t["id"] for t in data["tasks"]}
    assert "3.3" not in task_ids and {"3.4", "3.5", "12.1"} <= task_ids
    for step in data["steps"]:
        for criterion in step["gate"]:
            assert criterion["task"] in task_ids


def test_show_outline(cli: Cli) -> None:
    result = cli("workflow", "show", "msp-12-step")
    assert result.exit_code == 0
    assert "Module C Managing implementation" in result.output
    assert "task 3.4 Secure partnering agreement" in result.output


def test_show_unknown_workflow_is_exit_4(cli: Cli) -> None:
    result = cli("workflow", "show", "nope")
    assert result.exit_code == 4
    assert result.output.strip().splitlines() == [
        "mspflow: no workflow named 'nope' (bundled workflows: msp-12-step)"
    ]


def test_validate_ok_and_broken(cli: Cli) -> None:
    ok = cli("workflow", "validate", str(REPO / "workflows/msp-12-step.yaml"))
    assert ok.exit_code == 0 and ok.output.startswith("ok ")
    broken = REPO / "tests/definition/broken"
    bad = cli(
        "workflow", "validate", str(broken / "unknown-key.yaml"), str(broken / "trap-step.yaml")
    )
    assert bad.exit_code == 7
    lines = bad.output.strip().splitlines()
    assert any("unknown-key.yaml:25: unknown key 'colour'" in line for line in lines)
    assert any("trap-step.yaml:22:" in line for line in lines)


def test_validate_json_lists_problems(cli: Cli) -> None:
    broken = REPO / "tests/definition/broken/unknown-task.yaml"
    result = cli("workflow", "validate", "--json", str(broken))
    assert result.exit_code == 7
    data = json.loads(result.output)
    assert data[0]["ok"] is False and data[0]["problems"][0]["line"] == 30


def test_validate_missing_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    result = cli("workflow", "validate", str(tmp_path / "none.yaml"))
    assert result.exit_code == 7
    assert len(result.output.strip().splitlines()) == 1
    assert "cannot read the file" in result.output


def test_mermaid_diagram(cli: Cli) -> None:
    result = cli("workflow", "diagram", "msp-12-step", "--format", "mermaid")
    assert result.exit_code == 0
    out = result.output
    assert out.startswith("stateDiagram-v2")
    assert "reviewing --> delivering: advance" in out
    assert "moving_on --> terminated: termination" in out


def test_dot_diagram_is_accepted_by_graphviz(cli: Cli, tmp_path: Path) -> None:
    result = cli("workflow", "diagram", "msp-12-step", "--format", "dot")
    assert result.exit_code == 0
    assert "delivering -> measuring_progress" in result.output
    dot = shutil.which("dot")
    if dot is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz 'dot' must be installed in CI (scripts/system-deps.sh)")
        pytest.skip("Graphviz 'dot' is not installed")
    source = tmp_path / "msp.dot"
    source.write_text(result.output)
    svg = subprocess.run([dot, "-Tsvg", str(source)], capture_output=True, text=True, check=False)
    assert svg.returncode == 0, svg.stderr
    assert "<svg" in svg.stdout and "Delivering on the SDGs" in svg.stdout


def test_python_dash_m_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mspflow", "--help"], capture_output=True, text=True, check=True
    )
    assert "workflow" in out.stdout and "Exit codes:" in out.stdout


@pytest.mark.slow
def test_installed_wheel_works_from_any_directory(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh environment, run it outside the checkout."""
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
    )
    wheel = next(dist.glob("mspflow-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            site,
            str(wheel),
        ],
        check=True,
    )
    # Dependencies come from this environment; mspflow itself only from the wheel.
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps.pth").write_text("\n".join(deps) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [python, "-m", "mspflow", "workflow", "list", "--json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    where = subprocess.run(
        [python, "-c", "from mspflow.definition import bundled_dir; print(bundled_dir())"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(site), where
    assert [w["name"] for w in json.loads(run.stdout)] == ["msp-12-step"]


def test_docs_framework_md_is_the_bundled_definition_rendered(cli: Callable[..., Result]) -> None:
    """docs/framework.md is generated (``make docs``); a change of the YAML regenerates it."""
    out = cli("workflow", "show", "msp-12-step", "--format", "markdown")
    assert out.exit_code == 0, out.output
    assert (REPO / "docs/framework.md").read_text(encoding="utf-8") == out.output, (
        "docs/framework.md is stale: run 'make docs'"
    )
    assert "no source" not in out.output  # every part cites the guideline
    for line in out.output.splitlines():
        if line.startswith("| `") or line.startswith("| advance") or line.startswith("| revisit"):
            assert "| line" in line, line
