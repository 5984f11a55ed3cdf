"""Every error a user can cause, in one hierarchy.

Each class carries the exit code the CLI returns for it (documented in README.md),
and each instance renders as a single line that says what was wrong, where, and
how to fix it. The CLI prints ``str(error)`` and exits with ``error.exit_code``;
nothing else in mspflow decides exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EXIT_CODES",
    "AuditFailure",
    "ConcurrentChange",
    "DefinitionError",
    "DeliveryError",
    "GateNotMet",
    "InvalidInput",
    "MspflowError",
    "NotFound",
    "NotPermitted",
    "PartialSweep",
    "Problem",
    "StorageError",
    "UnmetCriterion",
    "UsageError",
]


class MspflowError(Exception):
    """Base class: a message a user can act on, and an exit code."""

    exit_code = 1

    def __init__(
        self, message: str, *, hint: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: The input field the error is about (``timezone``, ``grace_days``), if any.
        self.field = field

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(MspflowError):
    """The command line itself is wrong (also what click reports)."""

    exit_code = 2


@dataclass(frozen=True)
class UnmetCriterion:
    """One exit-gate criterion that did not pass, with what would satisfy it."""

    criterion: str
    task: str
    title: str
    detail: str
    fix: str

    def line(self) -> str:
        return f"task {self.task} [{self.criterion}] {self.title}: {self.detail}; {self.fix}"


class GateNotMet(MspflowError):
    """A transition was refused because exit-gate criteria are unmet."""

    exit_code = 3

    def __init__(self, partnership: str, step: str, dest: str, unmet: Sequence[UnmetCriterion]):
        self.partnership = partnership
        self.step = step
        self.dest = dest
        self.unmet = tuple(unmet)
        tasks = ", ".join(f"{u.task} {u.criterion}" for u in self.unmet)
        super().__init__(
            f"partnership {partnership}: cannot leave step {step} for {dest}: "
            f"{len(self.unmet)} criterion(s) unmet: {tasks}",
            hint="record the evidence, or waive the criterion with a reason "
            f"('mspflow partnership show {partnership}' lists what each needs)",
        )

    def lines(self) -> list[str]:
        return [str(self)] + [f"  {u.line()}" for u in self.unmet]


class NotFound(MspflowError):
    exit_code = 4


class ConcurrentChange(MspflowError):
    """Someone else changed the partnership between our read and our write."""

    exit_code = 5


class NotPermitted(MspflowError):
    exit_code = 6


class InvalidInput(MspflowError):
    exit_code = 7


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in an input file, located to the line."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class DefinitionError(InvalidInput):
    """A workflow definition (or any structured input file) has problems.

    All problems are collected before raising, so that one run shows every
    mistake rather than the first.
    """

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(sorted(set(problems)))
        first = self.problems[0] if self.problems else Problem("?", 0, "invalid")
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}")

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class AuditFailure(MspflowError):
    """The history does not verify: it was altered outside mspflow."""

    exit_code = 8


class StorageError(MspflowError):
    """The database cannot be used as it is (unknown schema version, unreachable)."""

    exit_code = 9


class DeliveryError(MspflowError):
    """A notification could not be delivered (it stays queued for a retry)."""

    exit_code = 10


class PartialSweep(MspflowError):
    """Some schedules or notifications failed; they were recorded and escalated,
    and everything else was handled."""

    exit_code = 11


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug: please report it)",
    2: "usage: the command line is wrong",
    3: "gate not met: exit criteria of the current step are unmet",
    4: "not found: no such partnership, partner, user, workflow or record",
    5: "concurrent change: the partnership changed meanwhile; nothing was written, retry",
    6: "not permitted: the actor's role may not do this",
    7: "invalid input: a value or file is wrong; nothing was written",
    8: "audit failure: the history does not verify",
    9: "storage: the database cannot be used as it is (schema version, connection)",
    10: "delivery: a notification could not be sent (it stays queued)",
    11: "partial: some schedules failed and were recorded; the rest were handled",
}
