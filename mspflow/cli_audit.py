"""``mspflow audit ...``: the auditor's commands (read-only by construction)."""

from __future__ import annotations

import click

from mspflow.cli import _Group


@click.group(cls=_Group)
def audit() -> None:
    """Verify, query, export and check the history (read-only)."""
