"""``mspflow export iati`` and ``mspflow export sdg-progress``: the sector's formats."""

from __future__ import annotations

import click

from mspflow.cli.base import App, Group, emit, json_option, pass_app

__all__ = ["register"]


@click.group(cls=Group)
def export() -> None:
    """Export for donors and national platforms (IATI, Open SDG)."""


@export.command("iati")
@click.argument("partnerships", nargs=-1, metavar="[P ...]")
@click.option("-o", "--output", required=True, metavar="FILE", help="The XML file ('-': stdout).")
@json_option
@pass_app
def export_iati(app: App, partnerships: tuple[str, ...], output: str, as_json: bool) -> None:
    """An IATI 2.03 activity file of P ... (default: every partnership you may read),
    validated against the schema before it is written."""
    done = app.mspflow.exports.iati(path=output, partnerships=list(partnerships))
    for note in done.notes:
        click.echo(f"mspflow: note: {note}", err=True)
    if output != "-" or as_json:
        emit(done, as_json, f"wrote {done.activities} IATI activities to {done.path}")


@export.command("sdg-progress")
@click.argument("partnerships", nargs=-1, metavar="[P ...]")
@click.option("-o", "--output", required=True, metavar="DIR", help="The folder (made if missing).")
@json_option
@pass_app
def export_sdg(app: App, partnerships: tuple[str, ...], output: str, as_json: bool) -> None:
    """Tracked SDG indicators as Open SDG data files, one CSV per indicator."""
    done = app.mspflow.exports.sdg_progress(folder=output, partnerships=list(partnerships))
    emit(
        done,
        as_json,
        lambda: (
            "\n".join(f"{name}: {rows} rows" for name, rows in done.files.items())
            or "no indicator values to export"
        ),
    )


def register(main: click.Group) -> None:
    main.add_command(export)
