"""``mspflow db ...``: schema migrations."""

from __future__ import annotations

import click

from mspflow.cli import _Group


@click.group(cls=_Group)
def db() -> None:
    """Upgrade the database schema and show its revision."""
