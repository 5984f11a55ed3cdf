"""The benchmark sections, each adding its figures to a :class:`~benchmarks.common.Report`."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, Profile, Report, median

__all__ = [
    "FULL",
    "QUICK",
    "Portfolios",
    "Sizes",
    "environment",
    "run_scale",
    "run_startup",
    "run_sweep",
    "run_transitions",
    "sqlite_copy",
]


@dataclass(frozen=True)
class Sizes:
    rounds: int  # transition rounds, engines interleaved
    walkers: int  # partnerships walked through 12 steps per round and engine
    portfolio: int  # partnerships in the large portfolio
    events: int  # history events in the large portfolio
    small: int  # partnerships in the small portfolio (per-transition growth)
    small_events: int
    scale_walkers: int  # partnerships walked on each portfolio, per round
    scale_rounds: int
    history_samples: int
    verify_repeats: int
    startup_runs: int
    reminders: int  # due in the sweep
    status_sample: int  # partnerships whose schedule status is timed


FULL = Sizes(5, 40, 100_000, 1_000_000, 1_000, 10_000, 10, 3, 300, 3, 15, 100_000, 500)
QUICK = Sizes(3, 6, 10_000, 100_000, 1_000, 10_000, 4, 2, 60, 2, 7, 10_000, 200)


# --------------------------------------------------------------------------- environment


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: Path) -> str:
    try:
        out = (
            subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, check=True)
            .stdout.splitlines()[1]
            .split()
        )
        return f"{out[1]} on {out[0]}"
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def _revision() -> str:
    """The commit measured; "-dirty" when the work tree had changes besides it."""
    try:
        return subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def environment(pg_version: str | None) -> list[str]:
    tmp = Path(tempfile.gettempdir())
    return [
        f"mspflow revision: {_revision()}",
        f"machine: {_cpu()}, {os.cpu_count()} cores, {_memory()} memory; "
        f"{platform.system()} {platform.release()}",
        f"temporary files: {tmp} ({_filesystem(tmp)})",
        f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"SQLAlchemy {_version('SQLAlchemy')}, sqlmodel {_version('sqlmodel')}, "
        f"transitions {_version('transitions')}, psycopg {_version('psycopg')}, "
        f"SpiffWorkflow {_version('SpiffWorkflow')}, mspflow {_version('mspflow')}",
        f"PostgreSQL server: {pg_version or 'not used'}",
        "durability: SQLite WAL + synchronous=FULL + foreign_keys=ON (as mspflow ships it); "
        "PostgreSQL fsync=on, synchronous_commit=on (its defaults)",
    ]


# --------------------------------------------------------------------------- CLI start-up


def run_startup(report: Report, sizes: Sizes, wanted: set[str]) -> None:
    report.say("\nCLI start-up (wall time of a fresh process)")
    script = Path(sys.executable).with_name("mspflow")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mspflow"]
    ours: list[float] = []
    base: list[float] = []
    for _ in range(sizes.startup_runs):
        for argv, out in (([*command, "--help"], ours), ([sys.executable, "-c", "pass"], base)):
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            out.append(time.perf_counter() - start)
    figure = report.add(
        Figure(
            backend="-",
            name="mspflow --help",
            value=median(ours) * 1e3,
            unit="ms",
            baseline_name="python -c pass",
            baseline=median(base) * 1e3,
            target=150,
            check_on="value",
            higher=False,
            samples=len(ours),
        )
    )
    if not figure.passed or {"startup", "all"} & wanted:
        report.say("  slowest imports of mspflow.cli (python -X importtime, cumulative):")
        for line in _slow_imports():
            report.say("    " + line)


def _slow_imports(top: int = 8) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import mspflow.cli"],
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:7.1f} ms {name}" for us, name in rows[:top]]


# --------------------------------------------------------------------------- transitions


def run_transitions(
    report: Report,
    backend: str,
    url_for: Callable[[str], str],
    sizes: Sizes,
    wanted: set[str],
) -> None:
    """mspflow, raw driver and SpiffWorkflow, rounds interleaved so that noise hits all alike."""
    from benchmarks.walks import MOVES, MspflowWalker, RawWalker, SpiffWalker

    report.say(
        f"\n[{backend}] persisted transitions: {sizes.rounds} rounds x {sizes.walkers} "
        f"partnerships x {len(MOVES)} transitions per engine, one transaction each"
    )
    walkers: list[Any] = [
        MspflowWalker(url_for("mspflow")),
        RawWalker(url_for("raw")),
        SpiffWalker(url_for("spiff")),
        SpiffWalker(url_for("spiffload"), load=True),
    ]
    profile = Profile(f"{backend}-move", wanted)
    rates: dict[str, list[float]] = {w.label: [] for w in walkers}
    each: dict[str, list[float]] = {w.label: [] for w in walkers}
    try:
        for r in range(sizes.rounds):
            for w in walkers:
                slugs = [f"r{r}-{w.label.lower()}-{i:04d}" for i in range(sizes.walkers)]
                times = w.walk(slugs, profile if w.label == "mspflow" else None)
                rates[w.label].append(len(times) / sum(times))
                each[w.label].extend(times)
            report.say(
                f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items())
            )
    finally:
        for w in walkers:
            w.close()
    profile.save(report.say)
    ours = median(rates["mspflow"])
    note = (
        f"median per transition {median(each['mspflow']) * 1e3:.2f} ms vs "
        f"{median(each['raw']) * 1e3:.2f} ms"
    )
    report.add(
        Figure(
            backend=backend,
            name="transitions/s, mspflow vs raw driver",
            value=ours,
            unit="/s",
            baseline_name="raw " + ("sqlite3" if backend == "sqlite" else "psycopg"),
            baseline=median(rates["raw"]),
            target=0.5,
            check_on="ratio",
            higher=True,
            note=note,
            samples=len(rates["mspflow"]),
        )
    )
    for label, how in (
        ("SpiffWorkflow+load", "state loaded from the database per transition, as mspflow does"),
        ("SpiffWorkflow", "instances kept in memory between transitions"),
    ):
        report.add(
            Figure(
                backend=backend,
                name=f"transitions/s, mspflow vs {label}",
                value=ours,
                unit="/s",
                baseline_name=label,
                baseline=median(rates[label]),
                target=5,
                check_on="ratio",
                higher=True,
                note=f"{how}; {median(each[label]) * 1e3:.2f} ms per transition",
                samples=len(rates["mspflow"]),
            )
        )


# --------------------------------------------------------------------------- scale


@dataclass
class Portfolios:
    """The large and the small portfolio on one backend, and how to get a writable copy."""

    big: Any
    small: Any
    copy: Callable[[Any, str], Any]  # (portfolio, tag) -> context manager yielding a URL


def run_scale(
    report: Report, backend: str, ports: Portfolios, sizes: Sizes, wanted: set[str]
) -> None:
    from benchmarks import scale

    big = ports.big
    report.say(
        f"\n[{backend}] scale: portfolio of {big.partnerships:,} partnerships and "
        f"{big.events:,} history events"
    )
    r = scale.Reader(big.url)
    try:
        # One partnership's history.
        slugs = scale.sample(big.partnerships, sizes.history_samples)
        for slug in slugs[:10]:  # warm caches and the definition parser
            scale.history_mspflow(r, slug)
            scale.history_raw(r, slug)
        ours, base = [], []
        profile = Profile(f"{backend}-history", wanted)
        for slug in slugs:
            with profile.segment():
                ours.append(scale.history_mspflow(r, slug))
            base.append(scale.history_raw(r, slug))
        profile.save(report.say)
        report.add(
            Figure(
                backend=backend,
                name="one partnership's history (get + history)",
                value=median(ours) * 1e3,
                unit="ms",
                baseline_name="raw SELECT",
                baseline=median(base) * 1e3,
                target=20,
                check_on="value",
                higher=False,
                note=f"{len(slugs)} random partnerships, {big.events // big.partnerships} "
                "events each on average",
                samples=len(ours),
            )
        )

        # Counts by step and overdue flags.
        ours, base = [], []
        counts: dict[str, Any] = {}
        for _ in range(max(5, sizes.history_samples // 20)):
            t, counts = scale.counts_mspflow(r)
            ours.append(t)
            t, raw_counts = scale.counts_raw(r)
            base.append(t)
            assert raw_counts == counts
        assert sum(counts["by_state"].values()) >= big.partnerships
        report.add(
            Figure(
                backend=backend,
                name="portfolio counts by step and overdue flags",
                value=median(ours) * 1e3,
                unit="ms",
                baseline_name="raw queries",
                baseline=median(base) * 1e3,
                target=200,
                check_on="value",
                higher=False,
                note=f"scheduler.status.portfolio_counts; {len(counts['overdue_flags']):,} "
                "partnerships with open overdue flags",
                samples=len(ours),
            )
        )

        # The overdue items of the whole portfolio, as `schedule status` without P lists them.
        scale.status_items_mspflow(r)  # warm: parses the definition once
        profile = Profile(f"{backend}-status", wanted)
        times = []
        with profile.segment():
            for _ in range(5):
                seconds, items = scale.status_items_mspflow(r)
                times.append(seconds)
        profile.save(report.say)
        raw_times = [scale.overdue_raw(r) for _ in range(5)]
        report.add(
            Figure(
                backend=backend,
                name="portfolio overdue items (schedule status, whole portfolio)",
                value=median(times) * 1e3,
                unit="ms",
                baseline_name="raw query of open overdue flags",
                baseline=median(raw_times) * 1e3,
                target=200,
                check_on="value",
                higher=False,
                note=f"scheduler.status.portfolio_overdue: {items:,} open overdue items of "
                f"{big.partnerships:,} partnerships",
                samples=len(times),
            )
        )

        # Verifying the whole chain.
        ours, core, base = [], [], []
        profile = Profile(f"{backend}-verify", wanted)
        n = 0
        for _ in range(sizes.verify_repeats):
            with profile.segment():
                t, n = scale.verify_command(r)
            ours.append(n / t)
            t, n2 = scale.verify_mspflow(r)
            core.append(n2 / t)
            t, n3 = scale.verify_raw(r)
            base.append(n3 / t)
            assert n == n2 == n3 == big.events, (n, n2, n3)
        profile.save(report.say)
        report.add(
            Figure(
                backend=backend,
                name="audit verify (verify_chain, as the command runs it)",
                value=median(ours),
                unit="events/s",
                baseline_name="raw cursor + same hash",
                baseline=median(base),
                target=100_000,
                check_on="value",
                higher=True,
                note=f"{n:,} events; history.verify over ORM objects: {median(core):,.0f} events/s",
                samples=len(ours),
            )
        )
    finally:
        r.close()

    # Per-transition time on the large portfolio against the small one.
    from benchmarks.walks import MspflowWalker

    small = ports.small
    per: dict[str, list[float]] = {"big": [], "small": []}
    profile = Profile(f"{backend}-move-at-scale", wanted)
    with ports.copy(big, "big") as big_url, ports.copy(small, "small") as small_url:
        walkers = {"big": MspflowWalker(big_url), "small": MspflowWalker(small_url)}
        try:
            for rnd in range(sizes.scale_rounds):
                for name, w in walkers.items():
                    slugs = [f"scale-{rnd}-{i:03d}" for i in range(sizes.scale_walkers)]
                    per[name].extend(w.walk(slugs, profile if name == "big" else None))
        finally:
            for w in walkers.values():
                w.close()
    profile.save(report.say)
    report.add(
        Figure(
            backend=backend,
            name=f"per-transition time at {big.partnerships:,} vs {small.partnerships:,} "
            "partnerships",
            value=median(per["big"]) * 1e3,
            unit="ms",
            baseline_name=f"at {small.partnerships:,}",
            baseline=median(per["small"]) * 1e3,
            target=1.5,
            check_on="ratio",
            higher=False,
            note=f"{len(per['big'])} transitions on each",
            samples=len(per["big"]),
        )
    )


def run_sweep(
    report: Report, backend: str, ports: Portfolios, sizes: Sizes, wanted: set[str]
) -> None:
    """One scheduler sweep with ``sizes.reminders`` reminders due, in a child process."""
    from benchmarks import sweep
    from benchmarks.common import CACHE

    name = f"{backend}-sweep"
    profile = CACHE / "profiles" / f"{name}.txt" if {name, "all"} & wanted else None
    if profile is not None:
        profile.parent.mkdir(parents=True, exist_ok=True)

    n = sizes.reminders
    report.say(f"\n[{backend}] scheduler sweep: {n:,} due reminders on the large portfolio")
    with ports.copy(ports.big, "sweep") as url:
        sweep.add_due_reminders(url, n)
        got = sweep.run_child(url, profile)
        base = sweep.raw_rows(url, n)
    if profile is not None:
        report.say(f"  profile of {name}: {profile} (the figures below are slowed by it)")
    fired = got["fired"].get("reminder notified", 0)
    if fired != n or got["sent"] != n or got["failed"]:
        raise RuntimeError(f"the sweep did not do what was set up: {got}")
    report.add(
        Figure(
            backend=backend,
            name=f"one sweep of {n:,} due reminders (terminal channel)",
            value=got["seconds"],
            unit="s",
            baseline_name="raw rows by hand",
            baseline=base,
            target=30,
            check_on="value",
            higher=False,
            note=f"{fired:,} reminders fired and {got['sent']:,} sent; the baseline inserts as "
            "many triggers and notifications and marks them sent",
            samples=1,
        )
    )
    report.add(
        Figure(
            backend=backend,
            name="peak memory of that sweep (process RSS)",
            value=got["peak_rss_mb"],
            unit="MB",
            baseline_name="same process before the sweep",
            baseline=got["rss_before_mb"],
            target=300,
            check_on="value",
            higher=False,
            samples=1,
        )
    )


@contextmanager
def sqlite_copy(portfolio: Any, tag: str) -> Iterator[str]:
    from benchmarks.portfolio import copy_sqlite

    with tempfile.TemporaryDirectory(prefix=f"mspflow-bench-{tag}-") as folder:
        yield copy_sqlite(portfolio, Path(folder))
