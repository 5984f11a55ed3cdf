"""The layers, kept by the imports: no cycle anywhere in mspflow, each layer importing
only the layers below it, and the command line imported by nothing outside it.

The modules are read with the standard library (``ast``), not imported, so a
lazy import inside a function counts as much as one at the top of a module;
imports under ``if TYPE_CHECKING:`` are for the type checker only and do not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mspflow"

#: Each module's layer, by the longest prefix that names it (README, "Architecture").
LAYERS: dict[str, int] = {
    # the foundation: errors, time, the rules for outside values, configuration
    "mspflow": 0,
    "mspflow.errors": 0,
    "mspflow.clock": 0,
    "mspflow.inputs": 0,
    "mspflow.config": 0,
    "mspflow.outfile": 0,
    "mspflow.walk": 0,
    # the framework as data
    "mspflow.definition": 1,
    "mspflow.scheduler.times": 1,
    # one partnership's state on the shared Machine
    "mspflow.machine": 2,
    # persistence, the history, the gate checks and the audit's readers
    "mspflow.store": 3,
    "mspflow.auth": 3,
    "mspflow.history": 3,
    "mspflow.gates": 3,
    "mspflow.audit": 3,
    "mspflow.scheduler": 3,
    # transactions, access, read models
    "mspflow.services": 4,
    # the front doors
    "mspflow.cli": 5,
    "mspflow.__main__": 5,
}
NAMES = {0: "foundation", 1: "definition", 2: "machine", 3: "store", 4: "services", 5: "front door"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> Iterator[str]:
    """Every module name an import in ``tree`` names (and each name it imports from it)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            yield from (name for child in node.orelse for name in _imports(child, package))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        yield from _imports(node, package)


def graph() -> dict[str, set[str]]:
    """Module -> the mspflow modules it imports."""
    mods = modules()
    edges: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target in _imports(ast.parse(path.read_text(encoding="utf-8")), package):
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("mspflow"):
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def test_no_module_of_mspflow_is_part_of_an_import_cycle() -> None:
    assert cycles(graph()) == []


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = [
        f"{a} ({NAMES[layer(a)]}) imports {b} ({NAMES[layer(b)]})"
        for a, targets in graph().items()
        for b in sorted(targets)
        if layer(b) > layer(a)
    ]
    assert wrong == []


def test_nothing_outside_the_command_line_imports_it() -> None:
    outside = [
        f"{a} imports {b}"
        for a, targets in graph().items()
        if not (a == "mspflow.cli" or a.startswith("mspflow.cli.") or a == "mspflow.__main__")
        for b in targets
        if b == "mspflow.cli" or b.startswith("mspflow.cli.")
    ]
    assert outside == []


def test_nothing_below_the_front_doors_imports_click() -> None:
    users = [
        name
        for name, path in modules().items()
        if layer(name) < 5
        and any(
            t == "click" or t.startswith("click.")
            for t in _imports(ast.parse(path.read_text(encoding="utf-8")), name)
        )
    ]
    assert users == []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(
    edges: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(edges) == expected


def test_the_reader_sees_lazy_imports_and_skips_type_checking_ones() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mspflow.cli import main\n"
        "def f():\n    from mspflow.store import models\n"
    )
    names = set(_imports(tree, "mspflow"))
    assert "mspflow.store.models" in names and "mspflow.cli" not in names
    assert all(layer(m) >= 0 for m in modules())
