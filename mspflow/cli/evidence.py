"""``mspflow record KIND``, ``attest``, ``partner ...`` and ``import``: evidence.

The ``record`` subcommands are made from the registry of evidence kinds
(:mod:`mspflow.definition.kinds`) on first use: one option or argument per
field, named after it.
"""

from __future__ import annotations

from typing import Any

import click

from mspflow.cli.base import App, Group, emit, json_option, pass_app

__all__ = ["LazyGroup", "option_name", "register"]


def option_name(f: Any) -> str:
    """How a field of a kind is given on the command line: ``NAME`` or ``--lead-days``."""
    name = str(f.name)
    return name.upper() if f.argument else "--" + name.replace("_", "-")


def _record_kinds() -> tuple[str, ...]:
    """The kinds ``mspflow record`` offers (the registry imports nothing heavy)."""
    from mspflow.definition.kinds import recordable

    return tuple(k.kind for k in recordable())


class LazyGroup(Group):
    """A group some of whose commands are built from the registry on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})  # command name -> kind of record

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self.lazy:
            command = record_command(self.lazy[name])
            self.add_command(command, name)
        return command


@click.group(cls=LazyGroup, lazy={kind: kind for kind in _record_kinds()})
def record() -> None:
    """Record evidence the exit gates read (one command per kind of record)."""


def record_command(kind: str) -> click.Command:
    """``mspflow record KIND P ...``, its parameters named after the kind's fields."""
    from mspflow.definition.kinds import KINDS

    spec = KINDS[kind]

    @pass_app
    def run(app: App, /, partnership: str, as_json: bool, **values: Any) -> None:
        values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
        done = app.mspflow.evidence.record(partnership=partnership, kind=kind, values=values)
        emit(
            done,
            as_json,
            f"{partnership}: {kind} recorded" + (f" (#{done.record})" if done.record else ""),
        )
        for note in done.notes:
            click.echo(f"mspflow: note: {note}", err=True)

    params: list[click.Parameter] = [click.Argument(["partnership"], metavar="P")]
    for f in spec.fields:
        if f.argument:
            params.append(click.Argument([f.name], metavar=f.name.upper()))
        elif f.type == "bool":
            params.append(
                click.Option(
                    [option_name(f), f.name], is_flag=True, default=None, help=f.help or None
                )
            )
        else:
            choice = click.Choice(f.choices) if f.type == "choice" else None
            params.append(
                click.Option(
                    [option_name(f), f.name],
                    type=choice,
                    multiple=f.multiple,
                    help=f.help or ("a date, YYYY-MM-DD" if f.type == "date" else None),
                )
            )
    params.append(click.Option(["--json", "as_json"], is_flag=True, help="Print JSON."))
    return click.Command(kind, callback=run, params=params, help=f"{spec.help} (task {spec.task})")


@record.command("resource-mobilized")
@click.argument("partnership", metavar="P")
@click.argument("resource", type=int, metavar="RESOURCE_ID")
@pass_app
def record_mobilized(app: App, partnership: str, resource: int) -> None:
    """A committed resource has been mobilized (task 6.2)."""
    app.mspflow.evidence.mobilize(partnership=partnership, resource=resource)
    click.echo(f"{partnership}: resource #{resource} mobilized")


@record.command("milestone-update")
@click.argument("partnership", metavar="P")
@click.argument("milestone", metavar="MILESTONE")
@click.option("--done", help="The date it was reached, YYYY-MM-DD.")
@click.option("--delay", help="Why it is late, and what is done about it.")
@click.option("--due", help="A new deadline, YYYY-MM-DD.")
@json_option
@pass_app
def record_milestone_update(
    app: App,
    partnership: str,
    milestone: str,
    done: str | None,
    delay: str | None,
    due: str | None,
    as_json: bool,
) -> None:
    """A milestone was reached, is late for a reason, or has a new deadline (task 8.1)."""
    result = app.mspflow.evidence.update_milestone(
        partnership=partnership,
        milestone=milestone,
        values={"done": done, "delay": delay, "due": due},
    )
    emit(result, as_json, f"{partnership}: milestone {milestone} updated")


@click.command("attest")
@click.argument("partnership", metavar="P")
@click.argument("task")
@click.option("--note", required=True, help="What was done.")
@click.option("--link", help="Where the proof is.")
@pass_app
def attest(app: App, partnership: str, task: str, note: str, link: str | None) -> None:
    """Attest that TASK of P is done (for judgment-call criteria)."""
    app.mspflow.evidence.attest(partnership=partnership, task=task, note=note, link=link)
    click.echo(f"{partnership}: task {task} attested")


@click.group(cls=LazyGroup, lazy={"add": "partner"})
def partner() -> None:
    """Partner organizations of a partnership."""


@partner.command("list")
@click.argument("partnership", metavar="P")
@json_option
@pass_app
def partner_list(app: App, partnership: str, as_json: bool) -> None:
    """P's partners."""
    rows = app.mspflow.partnerships.partners(partnership=partnership)
    emit(
        rows,
        as_json,
        lambda: (
            "\n".join(
                f"#{r.id} {r.name} ({r.sector}) {r.contact or ''}"
                + ("" if r.active else " [inactive]")
                for r in rows
            )
            or "no partners yet"
        ),
    )


@partner.command("update")
@click.argument("partnership", metavar="P")
@click.argument("partner", metavar="PARTNER")
@click.option("--sector")
@click.option("--contact")
@click.option("--email")
@click.option("--can-decide/--cannot-decide", default=None)
@click.option("--objectives", help="The partner's own objectives (task 2.2).")
@click.option("--accountable-to", help="To whom the partner is accountable (task 3.5).")
@click.option(
    "--role",
    type=click.Choice(["funding", "accountable", "extending", "implementing"]),
    help="Its role, as IATI's participating organisations name it.",
)
@click.option("--active/--inactive", default=None, help="Inactive partners leave the gates.")
@pass_app
def partner_update(app: App, /, partnership: str, partner: str, **values: Any) -> None:
    """Change details of PARTNER in P."""
    app.mspflow.evidence.update_partner(partnership=partnership, partner=partner, values=values)
    click.echo(f"{partnership}: partner {partner} updated")


@click.command("import")
@click.argument("partnership", metavar="P")
@click.argument("path", type=click.Path(dir_okay=False))
@json_option
@pass_app
def import_cmd(app: App, partnership: str, path: str, as_json: bool) -> None:
    """Record evidence for P in bulk from a YAML list or a CSV file (all or nothing).

    Each row names its kind of record with `record` (as in 'mspflow record KIND')
    and gives its fields; `kind` is still read for that where the kind of record
    has no `kind` field. UTF-8, with or without a byte-order mark. Every row is
    checked before anything is written.
    """
    done = app.mspflow.evidence.import_file(partnership=partnership, path=path)
    emit(
        done,
        as_json,
        f"{partnership}: " + ", ".join(f"{n} {k}" for k, n in done.counts.items()) + " recorded",
    )


def register(main: click.Group) -> None:
    for command in (record, attest, partner, import_cmd):
        main.add_command(command)
