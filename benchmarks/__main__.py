"""``python -m benchmarks [--quick] [--pg-url URL | --no-pg] [--only SECTION ...]``.

Sections: startup, transitions, scale, sweep (the scheduler's) and pg (the
transition, scale and sweep figures again on PostgreSQL). Every figure is
printed when it is measured and again in a table at the end; ``--json FILE``
also writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

SECTIONS = ("startup", "transitions", "scale", "sweep", "pg")


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="mspflow's benchmarks (issue 7): each figure beside a same-run baseline.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (10,000-partnership portfolio, fewer rounds): minutes, not tens of them",
    )
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run these sections"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("MSPFLOW_BENCH_PG_URL"),
        help="a PostgreSQL server to use (postgresql+psycopg://user@host:port/db; the user "
        "must be allowed to create databases); default: $MSPFLOW_BENCH_PG_URL, else a "
        "server started here if PostgreSQL is installed",
    )
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL figures")
    parser.add_argument(
        "--profile",
        nargs="+",
        default=[],
        metavar="NAME",
        help="write pyinstrument profiles to .bench-cache/profiles/: sqlite-move, "
        "sqlite-history, sqlite-verify, sqlite-status, sqlite-sweep, sqlite-move-at-scale "
        "(postgresql-... likewise), or all; 'startup' lists the slowest imports instead. "
        "Profiling slows what it measures.",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    from benchmarks import suite
    from benchmarks.common import Report

    sizes = suite.QUICK if args.quick else suite.FULL
    wanted = set(args.profile)
    report = Report()
    started = time.perf_counter()
    only = set(args.only)
    with ExitStack() as stack:
        pg_base = None
        if "pg" in only and not args.no_pg:
            pg_base = stack.enter_context(_postgres(args.pg_url, report))
        pg_version = None
        if pg_base is not None:
            from benchmarks.pgserver import server_version

            pg_version = server_version(pg_base)
        report.say("mspflow benchmarks" + (" (--quick)" if args.quick else ""))
        report.say(
            "command: " + " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]])
        )
        for line in suite.environment(pg_version):
            report.say(line)
            report.notes.append(line)

        if "startup" in only:
            suite.run_startup(report, sizes, wanted)
        if "transitions" in only:
            with tempfile.TemporaryDirectory(prefix="mspflow-bench-") as folder:
                suite.run_transitions(
                    report, "sqlite", lambda name: f"sqlite:///{folder}/{name}.db", sizes, wanted
                )
        if {"scale", "sweep"} & only:
            from benchmarks.portfolio import sqlite_portfolio

            report.say("\n[sqlite] portfolios (cached in .bench-cache/)")
            big = sqlite_portfolio(sizes.portfolio, sizes.events, report.say)
            small = sqlite_portfolio(sizes.small, sizes.small_events, report.say)
            ports = suite.Portfolios(big, small, suite.sqlite_copy)
            if "scale" in only:
                suite.run_scale(report, "sqlite", ports, sizes, wanted)
            if "sweep" in only:
                suite.run_sweep(report, "sqlite", ports, sizes, wanted)
        if pg_base is not None:
            _run_pg(report, pg_base, sizes, wanted, only)
        elif "pg" in only:
            report.say("\n[postgresql] skipped: " + ("--no-pg" if args.no_pg else "no server"))

    report.say(f"\nSummary ({time.perf_counter() - started:,.0f} s)")
    report.say(report.table())
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return 0


def _run_pg(report: Any, base: str, sizes: Any, wanted: set[str], only: set[str]) -> None:
    from benchmarks import pgserver, suite
    from benchmarks.portfolio import pg_portfolio

    names: list[str] = []

    def url_for(name: str) -> str:
        db = f"bench_tr_{name}_{os.getpid()}"
        names.append(db)
        return pgserver.create_database(base, db)

    if "transitions" in only:
        try:
            suite.run_transitions(report, "postgresql", url_for, sizes, wanted)
        finally:
            for db in names:
                pgserver.drop_database(base, db)
    if {"scale", "sweep"} & only:
        report.say("\n[postgresql] portfolios (kept as databases on the server)")
        big = pg_portfolio(base, sizes.portfolio, sizes.events, report.say)
        small = pg_portfolio(base, sizes.small, sizes.small_events, report.say)

        @contextmanager
        def copy(portfolio: Any, tag: str) -> Iterator[str]:
            template = portfolio.url.rsplit("/", 1)[1]
            with pgserver.scratch(base, f"bench_copy_{tag}_{os.getpid()}", template) as url:
                yield url

        ports = suite.Portfolios(big, small, copy)
        if "scale" in only:
            suite.run_scale(report, "postgresql", ports, sizes, wanted)
        if "sweep" in only:
            suite.run_sweep(report, "postgresql", ports, sizes, wanted)


@contextmanager
def _postgres(url: str | None, report: Any) -> Iterator[str | None]:
    if url:
        yield url
        return
    from benchmarks.pgserver import find_bindir, pg_server

    if find_bindir() is None:
        report.say("PostgreSQL: no --pg-url and no server installed; its figures are skipped")
        yield None
        return
    with pg_server(report.say) as base:
        yield base


if __name__ == "__main__":
    sys.exit(main())
