"""Figures tests measure (operations, conflicts, kills), shown in the terminal summary.

A test calls :func:`report`; ``tests/conftest.py`` prints every line at the end
of the run, so the figures appear in plain ``pytest -q`` output (CI's too).
"""

from __future__ import annotations

__all__ = ["FIGURES", "report"]

FIGURES: list[str] = []


def report(line: str) -> None:
    FIGURES.append(line)
