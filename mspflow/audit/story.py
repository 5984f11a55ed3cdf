"""The audit at the end of ``mspflow demo``: verify, export, check conformance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from mspflow.audit.conformance import check
from mspflow.audit.export import export_file
from mspflow.audit.verify import verify_chain
from mspflow.store import read_session

__all__ = ["audit_epilogue"]


def audit_epilogue(engine: Engine, out_dir: Path, say: Callable[[str], None]) -> None:
    """What an auditor would run on the demo portfolio, with what it shows.

    Verifies the hash chain and prints the head as an anchor, writes the history
    as XES and OCEL 2.0 into ``out_dir``, and prints the conformance result.
    Nothing is written to the database.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    say("Audit (what 'mspflow audit ...' shows an auditor):")
    verified = verify_chain(engine)
    say(f"  verify: the hash chain of {verified.events} events holds")
    say(f"  anchor: {verified.head}  (keep it; 'verify --anchor' then detects a rewrite)")
    with read_session(engine) as s:
        for fmt, name in (("xes", "history.xes"), ("ocel", "history.ocel.json")):
            done = export_file(s, fmt, out_dir / name)
            objects = sum(done.objects.values())
            extra = f", {objects} objects" if objects else ""
            say(
                f"  export {fmt}: {done.path} ({done.cases} partnerships, "
                f"{done.events} events{extra})"
            )
        report = check(s)
    if report.conforms:
        say(
            f"  conformance: every move of {report.partnerships} partnerships "
            f"({report.events} events) is one the pinned definition allows"
        )
    else:
        say(f"  conformance: {len(report.deviations)} deviation(s)")
        for d in report.deviations:
            say(f"    {d.line()}")
