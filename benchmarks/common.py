"""What every benchmark shares: timing, figures, printing."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE",
    "REPO",
    "Figure",
    "Pending",
    "Profile",
    "Report",
    "median",
    "stopwatch",
    "timed_many",
]

REPO = Path(__file__).resolve().parent.parent
#: Generated databases and profiles; ignored by git, safe to delete.
CACHE = Path(os.environ.get("MSPFLOW_BENCH_CACHE", REPO / ".bench-cache"))


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` leaves the elapsed seconds in ``t[0]``."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


@dataclass
class Figure:
    """One measured figure beside its same-run baseline and its target.

    ``higher`` says whether a larger value is better. ``target`` is checked
    against ``check_on``: the value itself (an absolute target) or the ratio
    value/baseline (a relative one).
    """

    backend: str
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    target: float
    check_on: str  # "value" | "ratio"
    higher: bool
    note: str = ""
    samples: int = 0

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    @property
    def passed(self) -> bool:
        got = self.value if self.check_on == "value" else self.ratio
        return got >= self.target if self.higher else got <= self.target

    def target_text(self) -> str:
        sign = ">=" if self.higher else "<"
        if self.check_on == "ratio":
            if self.target < 1 and self.higher:
                return f"ratio {sign} {self.target:.0%}"
            return f"ratio {sign} {self.target:g}x" if self.higher else f"ratio <= {self.target:g}x"
        return f"{sign} {_num(self.target)} {self.unit}"


@dataclass
class Pending:
    """A figure that cannot be measured yet, and why."""

    backend: str
    name: str
    target: str
    why: str


def _num(x: float) -> str:
    if x != x:  # nan
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


@dataclass
class Report:
    """Collects figures and prints them as they arrive and as a table at the end."""

    figures: list[Figure] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    out: Any = sys.stdout

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        self.say("  " + self.line(figure))
        return figure

    def wait(self, item: Pending) -> None:
        self.pending.append(item)
        self.say(f"  [{item.backend}] {item.name}: PENDING ({item.why})")

    def line(self, f: Figure) -> str:
        ratio = f"{f.ratio:.2f}x" if f.check_on == "value" or f.target >= 1 else f"{f.ratio:.1%}"
        return (
            f"[{f.backend}] {f.name}: {_num(f.value)} {f.unit} | baseline {f.baseline_name} "
            f"{_num(f.baseline)} {f.unit} | ratio {ratio} | target {f.target_text()} | "
            f"{'PASS' if f.passed else 'MISS'}" + (f" ({f.note})" if f.note else "")
        )

    def table(self) -> str:
        rows: list[tuple[str, ...]] = [
            ("backend", "figure", "median", "baseline (same run)", "ratio", "target", "")
        ]
        order = [f.backend for f in self.figures] + [p.backend for p in self.pending]
        for backend in dict.fromkeys(order):
            rows += [self._row(f) for f in self.figures if f.backend == backend]
            rows += [
                (p.backend, p.name, "-", "-", "-", p.target, "PENDING")
                for p in self.pending
                if p.backend == backend
            ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _row(self, f: Figure) -> tuple[str, ...]:
        ratio = f"{f.ratio:.2f}x" if f.check_on == "value" or f.target >= 1 else f"{f.ratio:.1%}"
        return (
            f.backend,
            f.name,
            f"{_num(f.value)} {f.unit}",
            f"{f.baseline_name}: {_num(f.baseline)} {f.unit}",
            ratio,
            f.target_text(),
            "PASS" if f.passed else "MISS",
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "figures": [
                {
                    "backend": f.backend,
                    "name": f.name,
                    "value": f.value,
                    "unit": f.unit,
                    "baseline_name": f.baseline_name,
                    "baseline": f.baseline,
                    "ratio": f.ratio,
                    "target": f.target_text(),
                    "passed": f.passed,
                    "note": f.note,
                    "samples": f.samples,
                }
                for f in self.figures
            ],
            "pending": [p.__dict__ for p in self.pending],
            "notes": self.notes,
        }


class Profile:
    """pyinstrument around chosen blocks only (``with profile.segment(): ...``), when asked.

    ``--profile NAME`` (or ``all``) turns it on for the figure called NAME; the
    segments add up into one report under ``.bench-cache/profiles/``.
    """

    def __init__(self, name: str, wanted: set[str]) -> None:
        self.name = name
        self.profiler: Any = None
        if {name, "all"} & wanted:
            from pyinstrument import Profiler

            self.profiler = Profiler(interval=0.0005)

    @contextmanager
    def segment(self) -> Iterator[None]:
        if self.profiler is None:
            yield
            return
        self.profiler.start()
        try:
            yield
        finally:
            self.profiler.stop()

    def save(self, say: Callable[[str], None]) -> None:
        if self.profiler is None or self.profiler.last_session is None:
            return
        folder = CACHE / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.name}.html").write_text(self.profiler.output_html(), encoding="utf-8")
        text = self.profiler.output_text(unicode=False, color=False)
        (folder / f"{self.name}.txt").write_text(text, encoding="utf-8")
        say(f"  profile of {self.name}: {folder / (self.name + '.txt')} (and .html)")


def timed_many(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Seconds per call of ``fn``, ``repeat`` times."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out
