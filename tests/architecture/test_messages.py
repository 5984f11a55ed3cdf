"""Messages below the front doors speak the domain, never a command line.

An error raised by the services, the store or the definition layer reaches the
web and the API as well as the terminal, so it names the field it is about
(``field=``) and says what to do in the domain's words; the command line adds
the option that gave the field (:func:`mspflow.cli.base.flag_for`). This test
reads every string an error, a problem or a hint is made of, in every module
below the front doors, and fails on an option (``--reason``) or a command
(``'mspflow advance ...'``).
"""

from __future__ import annotations

import ast
import re

from tests.architecture.test_imports import layer, modules

#: What a command line looks like in a message.
CLI_WORDS = re.compile(r"(?<![\w-])--[a-z][a-z-]*|'mspflow [a-z]+")
#: Calls that make a message a user reads.
MAKERS = {
    "MspflowError", "UsageError", "GateNotMet", "NotFound", "ConcurrentChange", "NotPermitted",
    "InvalidInput", "DefinitionError", "AuditFailure", "StorageError", "DeliveryError",
    "PartialSweep", "Problem", "_invalid", "_bad", "_named",
}  # fmt: skip


def _strings(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def messages(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string that goes into an error or a hint, once each."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            found += [(node.lineno, s) for s in _strings(node.exc)]
        elif isinstance(node, ast.Call) and _name(node) in MAKERS:
            found += [(node.lineno, s) for s in _strings(node)]
        elif isinstance(node, ast.keyword) and node.arg == "hint":
            found += [(node.value.lineno, s) for s in _strings(node.value)]
    return sorted(set(found))


def test_no_message_below_the_front_doors_speaks_the_command_line() -> None:
    wrong = []
    for name, path in sorted(modules().items()):
        if layer(name) >= 5:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, text in messages(tree):
            if CLI_WORDS.search(text):
                wrong.append(f"{path.name}:{line}: {text!r}")
    assert wrong == []


def test_the_scan_finds_an_option_and_a_command() -> None:
    tree = ast.parse(
        "raise InvalidInput('a waiver needs a reason', hint='add --reason TEXT')\n"
        "x = NotFound(f'no partnership {p}', hint=\"'mspflow partnership list' shows them\")\n"
        "y = InvalidInput('partnership water: closed', field='partnership')\n"
    )
    bad = [text for _line, text in messages(tree) if CLI_WORDS.search(text)]
    assert bad == ["add --reason TEXT", "'mspflow partnership list' shows them"]


def test_every_action_an_error_may_name_is_a_command() -> None:
    from mspflow.cli.base import ACTION_COMMANDS
    from mspflow.errors import ACTIONS

    assert set(ACTION_COMMANDS) == set(ACTIONS)
