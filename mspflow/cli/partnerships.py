"""``mspflow partnership ...`` and the moves: advance, revisit, waive, conclude,
scale-up, history, gate debt."""

from __future__ import annotations

import click

from mspflow.cli.base import App, Group, emit, expect_option, json_option, pass_app
from mspflow.cli.render import migrated, moved, partnership_text, timeline

__all__ = ["register"]


@click.group(cls=Group)
def partnership() -> None:
    """Create, list and show partnerships."""


@partnership.command("create")
@click.argument("name")
@click.option("--id", "slug", help="Short id (default: made from the name).")
@click.option(
    "--workflow",
    "workflow",
    default="msp-12-step",
    show_default=True,
    help="Bundled workflow name or definition file.",
)
@click.option("--at-step", help="Onboard an ongoing partnership at this step (gate debt kept).")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@json_option
@pass_app
def partnership_create(
    app: App,
    name: str,
    slug: str | None,
    workflow: str,
    at_step: str | None,
    timezone: str,
    as_json: bool,
) -> None:
    """Create a partnership NAME at step 1, or onboard it at --at-step."""
    p = app.mspflow.partnerships.create(
        name=name, workflow=workflow, slug=slug, at_step=at_step, timezone=timezone
    )
    emit(p, as_json, lambda: "created " + partnership_text(p))


@partnership.command("list")
@click.option("--step", help="Only partnerships at this step (number or id).")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--after", metavar="P", help="Those created after P (the next page).")
@json_option
@pass_app
def partnership_list(
    app: App, step: str | None, limit: int | None, after: str | None, as_json: bool
) -> None:
    """The portfolio: every partnership with its step and status."""
    rows = app.mspflow.partnerships.list(step=step, limit=limit, after=after)

    def text() -> str:
        lines = []
        for d in rows:
            where = f"{d.step.number:>2} {d.step.name}" if d.step else f"   closed: {d.final_state}"
            lines.append(f"{d.id:<28} {where:<36} {d.name}")
        return "\n".join(lines) or "no partnerships yet"

    emit(rows, as_json, text)


@partnership.command("show")
@click.argument("partnership", metavar="P")
@json_option
@pass_app
def partnership_show(app: App, partnership: str, as_json: bool) -> None:
    """Current step and module, every exit criterion and what would satisfy it."""
    p = app.mspflow.partnerships.show(partnership=partnership)
    emit(p, as_json, lambda: partnership_text(p))


@partnership.command("migrate")
@click.argument("partnership", metavar="P", required=False)
@click.option("--to", "to", required=True, metavar="VERSION", help="The definition version.")
@click.option("--all", "every", is_flag=True, help="Every open partnership on another version.")
@click.option(
    "--workflow", default="msp-12-step", show_default=True, help="With --all: the definition."
)
@click.option("--dry-run", is_flag=True, help="Write nothing; list what would become unmet.")
@expect_option
@json_option
@pass_app
def partnership_migrate(
    app: App,
    partnership: str | None,
    to: str,
    every: bool,
    workflow: str,
    dry_run: bool,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Move P (or, with --all, every open partnership) onto VERSION of its definition."""
    if every == (partnership is not None):
        raise click.UsageError("name one partnership P, or give --all")
    versions = app.mspflow.versions
    if every:
        results = versions.migrate_all(to=to, workflow=workflow, dry_run=dry_run)
    else:
        assert partnership is not None
        results = [
            versions.migrate(
                partnership=partnership, to=to, dry_run=dry_run, expect_version=expect_version
            )
        ]
    emit(results if every else results[0], as_json, lambda: migrated(results))


@click.command()
@click.argument("partnership", metavar="P")
@click.option("--to", "dest", help="Destination step where several are possible (e.g. 7 or 11).")
@click.option("--reason", help="Why (kept in the history).")
@expect_option
@json_option
@pass_app
def advance(
    app: App,
    partnership: str,
    dest: str | None,
    reason: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Move P on through the exit gate of its current step."""
    done = app.mspflow.partnerships.advance(
        partnership=partnership, to=dest, reason=reason, expect_version=expect_version
    )
    emit(done, as_json, lambda: moved(done))


@click.command()
@click.argument("partnership", metavar="P")
@click.argument("dest", metavar="STEP")
@click.option("--reason", required=True, help="Why the partnership goes back.")
@expect_option
@json_option
@pass_app
def revisit(
    app: App, partnership: str, dest: str, reason: str, expect_version: int | None, as_json: bool
) -> None:
    """Take P back to an earlier STEP, with a reason (any of steps 1-6 from a later one;
    from measuring progress, back to delivery)."""
    done = app.mspflow.partnerships.revisit(
        partnership=partnership, step=dest, reason=reason, expect_version=expect_version
    )
    emit(done, as_json, lambda: moved(done))


@click.command()
@click.argument("partnership", metavar="P")
@click.argument("criterion")
@click.option("--reason", required=True, help="Why the criterion cannot be met.")
@click.option("--step", help="An earlier step whose gate debt this settles.")
@expect_option
@json_option
@pass_app
def waive(
    app: App,
    partnership: str,
    criterion: str,
    reason: str,
    step: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Waive CRITERION of P's current step (or gate debt of --step), with a reason."""
    done = app.mspflow.partnerships.waive(
        partnership=partnership,
        criterion=criterion,
        reason=reason,
        step=step,
        expect_version=expect_version,
    )
    emit(
        {"id": partnership, "criterion": criterion, "event": done.event},
        as_json,
        f"{partnership}: {criterion} waived [event #{done.event}]",
    )


@click.command()
@click.argument("partnership", metavar="P")
@click.option(
    "--outcome",
    required=True,
    help="renewal-same-design, renewal-new-design, "
    "renewal-new-partners, transfer, transfer-to-institution or termination.",
)
@click.option("--reason", help="Required for termination: one of its reasons.")
@click.option("--note", help="Anything else worth keeping.")
@expect_option
@json_option
@pass_app
def conclude(
    app: App,
    partnership: str,
    outcome: str,
    reason: str | None,
    note: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Move P on from step 12 with an outcome (task 12.1)."""
    done = app.mspflow.partnerships.conclude(
        partnership=partnership,
        outcome=outcome,
        reason=reason,
        note=note,
        expect_version=expect_version,
    )
    emit(done, as_json, lambda: moved(done))


@click.command("scale-up")
@click.argument("partnership", metavar="P")
@click.option(
    "--dimension",
    "dimensions",
    multiple=True,
    help="social, physical, political or conceptual (repeatable).",
)
@click.option(
    "--decline", is_flag=True, help="The partners decided not to scale up (give the reason)."
)
@click.option("--description", required=True, help="How it scales up, or why it does not.")
@click.option(
    "--replicate",
    "replica",
    metavar="NAME",
    help="Create a linked replica MSP (the physical dimension).",
)
@click.option("--start-step", help="Where the replica starts (1 or 4).")
@expect_option
@json_option
@pass_app
def scale_up(
    app: App,
    partnership: str,
    dimensions: tuple[str, ...],
    decline: bool,
    description: str,
    replica: str | None,
    start_step: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Record P's scale-up decision (task 11.1), optionally replicating it."""
    done = app.mspflow.partnerships.scale_up(
        partnership=partnership,
        dimensions=list(dimensions),
        description=description,
        decline=decline,
        replica=replica,
        start_step=start_step,
        expect_version=expect_version,
    )
    emit(
        {"id": partnership, "decision": done.decision, "replica": done.replica},
        as_json,
        f"{partnership}: decided not to scale up"
        if decline
        else f"{partnership}: scale-up decided ({', '.join(dimensions)})"
        + (f"; replica {done.replica} created" if done.replica else ""),
    )


@click.command("history")
@click.argument("partnership", metavar="P")
@json_option
@pass_app
def history(app: App, partnership: str, as_json: bool) -> None:
    """P's timeline: who moved it where and when, why, on what evidence, what was waived.

    Oldest first. Each move lists the evidence its gate saw, the waivers that
    let it pass (with their author and reason) and any gate debt it left.
    """
    found = app.mspflow.partnerships.history(partnership=partnership)
    p = found.partnership
    title = f"{p.id}: {p.name} ({p.workflow.name} {p.workflow.version}), {len(found.events)} events"
    emit(found.events, as_json, lambda: "\n".join([title, *timeline(found.events)]))


@click.group(cls=Group)
def debt() -> None:
    """Gate debt: criteria of steps skipped when a partnership was onboarded."""


@debt.command("list")
@click.argument("partnership", metavar="P")
@json_option
@pass_app
def debt_list(app: App, partnership: str, as_json: bool) -> None:
    """Every skipped criterion of P and whether it is open, backfilled or waived."""
    rows = app.mspflow.partnerships.gate_debt(partnership=partnership)
    emit(
        rows,
        as_json,
        lambda: (
            "\n".join(
                f"step {r.step:>2} task {r.task:<5} {r.criterion:<28} {r.status}" for r in rows
            )
            or "no gate debt"
        ),
    )


@debt.command("backfill")
@click.argument("partnership", metavar="P")
@expect_option
@json_option
@pass_app
def debt_backfill(app: App, partnership: str, expect_version: int | None, as_json: bool) -> None:
    """Settle each open gate debt of P that the recorded evidence now meets."""
    done = app.mspflow.partnerships.backfill(partnership=partnership, expect_version=expect_version)
    emit(done, as_json, f"{partnership}: {len(done.settled)} settled, {len(done.open)} still open")


def register(main: click.Group) -> None:
    for command in (partnership, advance, revisit, waive, conclude, scale_up, history, debt):
        main.add_command(command)
