"""``mspflow audit ...``: the auditor's commands (read-only by construction).

The audit service opens its own read-only engine and checks that the acting
user is an auditor or a secretariat member before reading anything.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from mspflow.cli.base import App, Group, emit, json_option, pass_app
from mspflow.cli.render import event_line

__all__ = ["register"]


@click.group(cls=Group)
def audit() -> None:
    """Verify, query, export and check the history (read-only)."""


def _instant(_ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from mspflow.clock import parse_instant

    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not an ISO 8601 instant or date") from None


_partnerships_option = click.option(
    "--partnership",
    "-p",
    "partnerships",
    multiple=True,
    metavar="P",
    help="Only this partnership (repeatable; default: the whole portfolio).",
)


@audit.command("log")
@_partnerships_option
@click.option(
    "--actor",
    "actors",
    multiple=True,
    metavar="NAME",
    help="Only events by this user, or 'scheduler' (repeatable).",
)
@click.option(
    "--step", metavar="STEP", help="Only events leaving, entering or at this step (number or id)."
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Only this kind of event: create, onboard, advance, revisit, conclude, "
    "review-due, waive, backfill, scale-up, migrate, member-add, member-remove (repeatable).",
)
@click.option(
    "--since",
    callback=_instant,
    metavar="INSTANT",
    help="From this instant on (ISO 8601, inclusive; no offset means UTC).",
)
@click.option(
    "--until",
    callback=_instant,
    metavar="INSTANT",
    help="Before this instant (ISO 8601, exclusive).",
)
@json_option
@pass_app
def audit_log(
    app: App,
    partnerships: tuple[str, ...],
    actors: tuple[str, ...],
    step: str | None,
    kinds: tuple[str, ...],
    since: Any,
    until: Any,
    as_json: bool,
) -> None:
    """Events of the whole portfolio, oldest first, one line each."""
    events = app.mspflow.audit.log(
        partnerships=partnerships, actors=actors, kinds=kinds, step=step, since=since, until=until
    )
    first = True
    if as_json:
        click.echo("[", nl=False)
    for e in events:
        if as_json:
            text = json.dumps(e.to_json(), indent=2, ensure_ascii=False)
            click.echo(("\n" if first else ",\n") + _indent(text), nl=False)
        else:
            click.echo(f"{e.partnership} {event_line(e)}")
        first = False
    if as_json:
        click.echo("\n]" if not first else "]")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _anchor(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    from mspflow.audit.verify import Anchor
    from mspflow.errors import UsageError

    if value is None:
        return None
    try:
        return Anchor.parse(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


@audit.command("verify")
@click.option(
    "--anchor",
    callback=_anchor,
    metavar="SEQ:HASH",
    help="Also check the history against an anchor noted earlier "
    "('mspflow audit anchor'): catches a rewrite from scratch or cut-off events.",
)
@json_option
@pass_app
def audit_verify(app: App, anchor: Any, as_json: bool) -> None:
    """Recompute the hash chain; exit 8 naming the first event that does not verify."""
    result = app.mspflow.audit.verify(anchor=anchor)
    data = {
        "ok": True,
        "events": result.events,
        "head": {"seq": result.head.seq, "hash": result.head.hash, "anchor": str(result.head)},
        "anchor": str(anchor) if anchor else None,
    }
    against = f"; matches anchor {anchor.seq}" if anchor else ""
    emit(data, as_json, f"history verified: {result.events} events, head {result.head}{against}")


@audit.command("anchor")
@json_option
@pass_app
def audit_anchor(app: App, as_json: bool) -> None:
    """Print the newest event as SEQ:HASH, to keep outside the system."""
    head = app.mspflow.audit.anchor()
    emit({"seq": head.seq, "hash": head.hash, "anchor": str(head)}, as_json, str(head))


@audit.command("export")
@click.option(
    "--format",
    "format",
    type=click.Choice(["csv", "jsonl", "xes", "ocel"]),
    required=True,
    help="csv or jsonl (one row per event), xes (IEEE 1849, one trace per partnership) "
    "or ocel (OCEL 2.0 JSON, events related to partnerships, partners, meetings, reviews ...).",
)
@_partnerships_option
@click.option(
    "--output",
    "-o",
    "path",
    metavar="FILE",
    help="Write to FILE (required for xes and ocel; csv and jsonl default to standard output).",
)
@json_option
@pass_app
def audit_export(
    app: App, format: str, partnerships: tuple[str, ...], path: str | None, as_json: bool
) -> None:
    """Export the history for process-mining and spreadsheet tools.

    --output is written through to what it names: a regular file is replaced
    once the export is complete, a device or FIFO is written in place, a link is
    followed, and '-' is standard output.
    """
    from mspflow.errors import UsageError

    if path is None and format in ("xes", "ocel"):
        suffix = "ocel.json" if format == "ocel" else format
        raise UsageError(
            f"--format {format} writes a file",
            hint=f"add --output FILE, e.g. --output history.{suffix}",
        )
    if path is None or path == "-":
        app.mspflow.audit.export(format=format, out=sys.stdout, partnerships=partnerships)
        return
    done = app.mspflow.audit.export(format=format, path=path, partnerships=partnerships)
    objects = ", ".join(f"{n} {k}" for k, n in done.objects.items() if n)
    emit(
        done,
        as_json,
        f"{done.path}: {format}, {done.cases} partnerships, {done.events} events"
        + (f", objects: {objects}" if objects else ""),
    )


@audit.command("conformance")
@_partnerships_option
@json_option
@pass_app
def audit_conformance(app: App, partnerships: tuple[str, ...], as_json: bool) -> None:
    """Replay each history against its pinned definition; exit 8 listing every deviation."""
    from mspflow.errors import AuditFailure

    report = app.mspflow.audit.conformance(partnerships=partnerships)
    scope = f"{report.partnerships} partnerships, {report.events} events replayed"
    emit(
        report.as_dict(),
        as_json,
        lambda: (
            "\n".join(d.line() for d in report.deviations)
            if report.deviations
            else f"the portfolio conforms to its definitions: {scope}"
        ),
    )
    if not report.conforms:
        affected = len({d.partnership for d in report.deviations})
        raise AuditFailure(
            f"{len(report.deviations)} deviation(s) in {affected} partnership(s) ({scope})",
            hint="each line above names the event and what the definition expected",
        )


def register(main: click.Group) -> None:
    main.add_command(audit)
