"""YAML bounds in workflow definitions: aliases expand to a bounded size, nesting is
bounded, and a few hundred hostile bytes never cost more than a little memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mspflow.definition import parse_workflow
from mspflow.definition.yamlsafe import MAX_DEPTH, load_yaml
from mspflow.errors import DefinitionError

#: Nine levels of nine aliases, 521 bytes: `name` holds 9**9 (387 million) strings once
#: expanded, and the loader quotes a mistyped value in its message.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{','.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefg", "bcdefgh", strict=True)
)
BOMB = "mspflow: 1\n" + BOMB + f"name: [{','.join(['*h'] * 9)}]\n"
BOMB += "#" * (521 - len(BOMB) - 1) + "\n"

#: A small go-between: it runs `mspflow workflow validate FILE` as its own child under a
#: 1 GiB address-space limit (a regression fails with MemoryError instead of taking the
#: machine), then reports that child's exit code, its peak resident memory
#: (getrusage(RUSAGE_CHILDREN)) and what it printed. The go-between is needed because
#: Linux carries a process's peak across fork and exec: measured directly under pytest, the
#: peak would be the test runner's own.
CHILD = """
import json, resource, subprocess, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
done = subprocess.run(
    [sys.executable, "-m", "mspflow", "workflow", "validate", sys.argv[1]],
    capture_output=True, text=True,
)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"code": done.returncode, "peak": peak, "stderr": done.stderr}))
"""


def test_the_bomb_is_the_size_the_issue_names() -> None:
    assert len(BOMB.encode()) == 521


@pytest.mark.timeout(120)
def test_an_alias_bomb_is_refused_within_200_mb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["code"] == 7, out
    assert out["peak"] < 200 * 1024 * 1024, out
    lines = out["stderr"].splitlines()
    assert len(lines) == 1 and "aliases expanded" in lines[0], lines
    assert f"{path}:" in lines[0]


def test_deep_nesting_is_refused_in_a_definition() -> None:
    deep = "mspflow: 1\nname: deep\nsteps: " + "[" * 5_000 + "]" * 5_000 + "\n"
    with pytest.raises(DefinitionError, match=rf"deep\.yaml:3: nested deeper than {MAX_DEPTH}"):
        parse_workflow(deep, "deep.yaml")
    load_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n", "ok.yaml")


def test_a_small_alias_still_reads_in_a_definition() -> None:
    data, problems = load_yaml("a: &x [1, 2]\nb: *x\n", "ok.yaml")
    assert problems == [] and data == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(DefinitionError, match="anchors and aliases"):
        load_yaml("a: &x [1, 2]\nb: *x\n", "evidence.yaml", plain=True)


def test_a_cyclic_alias_is_refused() -> None:
    with pytest.raises(DefinitionError, match="refers to the node that contains it"):
        load_yaml("a: &x [1, *x]\n", "cycle.yaml")


def test_a_nul_or_a_huge_value_is_refused_with_its_line() -> None:
    with pytest.raises(DefinitionError, match=r"nul\.yaml:2: the character '\\x00'"):
        load_yaml("a: 1\nb: x\x00y\n", "nul.yaml")
    with pytest.raises(DefinitionError, match=r"big\.yaml:1: a value of 65,537 characters"):
        load_yaml("a: " + "x" * 65_537 + "\n", "big.yaml")


def test_a_mistyped_long_value_is_quoted_short() -> None:
    """The message quotes a wrong value, cut short: a list of 5,000 names stays one short line."""
    names = ",".join(["x" * 50] * 5_000)
    with pytest.raises(DefinitionError) as info:
        parse_workflow(f"mspflow: 1\nname: [{names}]\n", "long.yaml")
    lines = info.value.lines()
    assert any("'name' in the workflow must be" in line for line in lines), lines
    assert max(len(line) for line in lines) < 300, max(len(line) for line in lines)


def test_a_huge_definition_file_is_refused_unread(tmp_path: Path) -> None:
    from mspflow.definition import load_workflow

    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 300_000)  # 3 MB of comments
    with pytest.raises(DefinitionError, match=r"huge\.yaml:0: the file is larger than 2,097,152"):
        load_workflow(path)
    with pytest.raises(DefinitionError, match=r"/dev/zero:0: the file is larger than"):
        load_workflow("/dev/zero")  # a file that never ends is read only up to the bound
