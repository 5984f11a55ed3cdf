"""The ``--json`` output of every read command on the demo database, kept as it was.

``python -m tests.golden`` records it (run it only when an issue changes the
output on purpose, and say so in the commit); ``tests/test_golden.py`` builds
the demo again and compares. The comparison allows keys to be added, never
renamed, removed or changed in value, except where a value is derived from the
history's hashes (which change whenever what an event records changes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent / "demo"
NOW = "2028-03-01T09:00:00Z"
#: Partnerships of the demo portfolio.
PARTNERSHIPS = (
    "water-kch",
    "safe-water-for-pursat",
    "png-capacity",
    "banana-network",
    "mekong-forum",
)
#: Values derived from the hash chain: compared as 64 hex digits, not as they were.
HASHED = frozenset({"hash", "prev_hash"})
#: Values naming where the database is: not compared.
PLACES = frozenset({"database"})


def commands() -> Iterator[tuple[str, tuple[str, ...]]]:
    """(name of the golden file, command line) for every read command."""
    yield "workflow-list", ("workflow", "list", "--json")
    yield "workflow-show", ("workflow", "show", "msp-12-step", "--json")
    yield "user-list", ("user", "list", "--json")
    yield "partnership-list", ("partnership", "list", "--json")
    for p in PARTNERSHIPS:
        yield f"partnership-show-{p}", ("partnership", "show", p, "--json")
        yield f"history-{p}", ("history", p, "--json")
        yield f"debt-list-{p}", ("debt", "list", p, "--json")
        yield f"partner-list-{p}", ("partner", "list", p, "--json")
        yield f"schedule-list-{p}", ("schedule", "list", p, "--all", "--json")
        yield f"schedule-status-{p}", ("schedule", "status", p, "--json")
        yield f"schedule-fired-{p}", ("schedule", "fired", p, "--limit", "500", "--json")
    yield "schedule-status", ("schedule", "status", "--json")
    yield "schedule-fired", ("schedule", "fired", "--limit", "500", "--json")
    yield "remind-outbox", ("remind", "outbox", "--all", "--limit", "1000", "--json")
    yield "audit-log", ("audit", "log", "--json")
    yield "audit-log-water", ("audit", "log", "-p", "water-kch", "--kind", "advance", "--json")
    yield "audit-verify", ("audit", "verify", "--json")
    yield "audit-anchor", ("audit", "anchor", "--json")
    yield "audit-conformance", ("audit", "conformance", "--json")
    yield "audit-export-jsonl", ("audit", "export", "--format", "jsonl")
    yield "db-current", ("db", "current", "--json")


def parse(name: str, output: str) -> Any:
    if name == "audit-export-jsonl":
        return [json.loads(line) for line in output.splitlines() if line.strip()]
    return json.loads(output)


def run_all(invoke: Callable[..., Any], db: Path) -> dict[str, Any]:
    """Each command's parsed output on the demo database ``db``."""
    env = {"MSPFLOW_DATABASE_URL": f"sqlite:///{db}", "MSPFLOW_ACTOR": "amara", "MSPFLOW_NOW": NOW}
    found: dict[str, Any] = {}
    for name, args in commands():
        result = invoke(*args, env=env)
        assert result.exit_code == 0, (args, result.output)
        found[name] = parse(name, result.stdout)
    return found


def differences(golden: Any, found: Any, where: str = "") -> Iterator[str]:
    """How ``found`` departs from ``golden``: a key missing, a value changed, a list
    of another length. Keys that ``golden`` lacks are allowed."""
    if isinstance(golden, dict):
        if not isinstance(found, dict):
            yield f"{where or '.'}: was an object, is {type(found).__name__}"
            return
        for key, value in golden.items():
            here = f"{where}.{key}"
            if key not in found:
                yield f"{here}: missing"
            elif key in PLACES:
                continue
            elif key in HASHED:
                if not _hex64(found[key]):
                    yield f"{here}: {found[key]!r} is not a hash"
            elif key == "anchor" and isinstance(value, str) and ":" in value:
                seq, _, digest = str(found[key]).partition(":")
                if seq != value.partition(":")[0] or not _hex64(digest):
                    yield f"{here}: {found[key]!r} is not anchor {value.partition(':')[0]}:<hash>"
            else:
                yield from differences(value, found[key], here)
    elif isinstance(golden, list):
        if not isinstance(found, list) or len(found) != len(golden):
            size = len(found) if isinstance(found, list) else type(found).__name__
            yield f"{where or '.'}: was a list of {len(golden)}, is {size}"
            return
        for i, (g, f) in enumerate(zip(golden, found, strict=True)):
            yield from differences(g, f, f"{where}[{i}]")
    elif golden != found:
        yield f"{where or '.'}: was {golden!r}, is {found!r}"


def _hex64(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef")
