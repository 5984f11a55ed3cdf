"""README's 'Running partnerships' block runs as written, from a checkout, on a fresh database.

Each command must exit 0, or with one of the codes its comment names (``# exit 0, or 3``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

_EXITS = re.compile(r"#\s*exit ([0-9]+(?:, or [0-9]+)*)")


def _block(heading: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1]
    body = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    return [c for c in body.replace("\\\n", " ").splitlines() if c.strip()]


def test_running_partnerships_block_runs_as_written(tmp_path: Path) -> None:
    commands = _block("Running partnerships")
    assert commands[0].startswith(". .venv/bin/activate")
    rcs = tmp_path / "rcs"
    script = ["set +e"]
    for i, command in enumerate(commands):
        if i == 0 and not (REPO / ".venv/bin/activate").exists():
            command = f'export PATH="{Path(sys.executable).parent}:$PATH"'
        script += [command, f'echo "{i} $?" >> "{rcs}"']
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    env["HOME"] = str(tmp_path)
    env["MSPFLOW_CONFIG"] = str(tmp_path / "no-config.toml")
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    codes = dict(line.split() for line in rcs.read_text().splitlines())
    assert len(codes) == len(commands), done.stderr
    for i, command in enumerate(commands):
        found = _EXITS.search(command)
        allowed = {int(n) for n in re.findall(r"[0-9]+", found.group(1))} if found else {0}
        assert int(codes[str(i)]) in allowed, (command, codes[str(i)], done.stderr[-2000:])
    assert "Traceback" not in done.stdout + done.stderr
