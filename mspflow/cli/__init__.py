"""The ``mspflow`` command line: parses arguments, calls one service, prints.

Each command group lives in its own module and is a thin adapter over
:mod:`mspflow.services`: nothing here decides policy or queries the database.
Errors are printed as one line each (never a traceback) and mapped to the exit
codes of :data:`mspflow.cli.base.EXIT_CODES`.
"""

from __future__ import annotations

import click

from mspflow.cli import audit, demo, evidence, exports, partnerships, schedules, setup, workflow
from mspflow.cli.base import EPILOG, App, Root

__all__ = ["main"]


@click.group(cls=Root, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mspflow")
@click.option(
    "--db",
    metavar="URL|PATH",
    help="Database (default: $MSPFLOW_DATABASE_URL, "
    "else a SQLite file in the user data directory).",
)
@click.option("--as", "actor", metavar="USER", help="Act as USER (default: $MSPFLOW_ACTOR).")
@click.option("--now", envvar="MSPFLOW_NOW", hidden=True, help="Pretend it is this instant.")
@click.pass_context
def main(ctx: click.Context, db: str | None, actor: str | None, now: str | None) -> None:
    """mspflow: multi-stakeholder partnerships for the SDGs, step by step.

    Each partnership moves through the 12 steps of the UNU-IAS/ESCAP
    partnership framework; every move is gated, recorded and verifiable.
    """
    ctx.obj = app = App(db, actor, now)
    ctx.call_on_close(app.close)


for _module in (workflow, setup, partnerships, evidence, schedules, audit, exports, demo):
    _module.register(main)
