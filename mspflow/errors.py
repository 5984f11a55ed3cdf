"""Every error a user can cause, in one hierarchy.

Each class carries a stable ``code`` (``not-found``, ``gate-not-met`` ...), and
each instance the ``field`` it is about, when there is one (``reason``,
``timezone``, ``partnership``), and renders as a single line that says what was
wrong, where, and how to fix it, in the domain's words: never a command-line
option or command, for the same error reaches the web and the API too. Each
front door maps codes and fields in one place: the command line to exit codes
and options (:mod:`mspflow.cli.base`), the web to statuses and form fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "CODES",
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
    """Base class: a message a user can act on, a code, and the field it is about."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        field: str | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: The input field the error is about (``timezone``, ``grace_days``), if any.
        self.field = field
        #: The operation that fixes it, when it is one of mspflow's own (:data:`ACTIONS`):
        #: each front door says how it is done there.
        self.action = action

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(MspflowError):
    """The command line itself is wrong (also what click reports)."""

    code = "usage"


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

    code = "gate-not-met"

    def __init__(self, partnership: str, step: str, dest: str, unmet: Sequence[UnmetCriterion]):
        self.partnership = partnership
        self.step = step
        self.dest = dest
        self.unmet = tuple(unmet)
        tasks = ", ".join(f"{u.task} {u.criterion}" for u in self.unmet)
        super().__init__(
            f"partnership {partnership}: cannot leave step {step} for {dest}: "
            f"{len(self.unmet)} criterion(s) unmet: {tasks}",
            hint="record the evidence, or waive the criterion with a reason; "
            "the partnership's exit gate lists what each needs",
        )

    def lines(self) -> list[str]:
        return [str(self)] + [f"  {u.line()}" for u in self.unmet]


class NotFound(MspflowError):
    code = "not-found"


class ConcurrentChange(MspflowError):
    """Someone else changed the partnership between our read and our write."""

    code = "conflict"


class NotPermitted(MspflowError):
    code = "not-permitted"


class InvalidInput(MspflowError):
    code = "invalid"


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

    code = "audit-failure"


class StorageError(MspflowError):
    """The database cannot be used as it is (unknown schema version, unreachable)."""

    code = "storage"


class DeliveryError(MspflowError):
    """A notification could not be delivered (it stays queued for a retry)."""

    code = "delivery"


class PartialSweep(MspflowError):
    """Some schedules or notifications failed; they were recorded and escalated,
    and everything else was handled."""

    code = "partial"


#: Operations an error may name as its fix (``action``).
ACTIONS: dict[str, str] = {
    "init": "create the database and its first user",
    "upgrade": "bring the database to this mspflow's schema",
}

#: Every code, with what it means.
CODES: dict[str, str] = {
    "usage": "the request itself is malformed",
    "gate-not-met": "exit criteria of the current step are unmet",
    "not-found": "no such partnership, partner, user, workflow or record",
    "conflict": "the partnership changed meanwhile; nothing was written, retry",
    "not-permitted": "the actor's role or membership does not allow this",
    "invalid": "a value or file is wrong; nothing was written",
    "audit-failure": "the history does not verify",
    "storage": "the database cannot be used as it is (schema version, connection)",
    "delivery": "a notification could not be sent (it stays queued)",
    "partial": "some schedules failed and were recorded; the rest were handled",
}
