"""The ``mspflow`` command line: parses arguments, calls the library, prints.

Nothing here decides policy. Errors from the library are printed as one line
each (never a traceback) and mapped to the exit codes in :mod:`mspflow.errors`.
Heavy modules are imported inside the commands that need them, so that
``mspflow --help`` starts quickly.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from mspflow.errors import EXIT_CODES, DefinitionError, GateNotMet, InvalidInput, MspflowError

__all__ = ["main"]


_UNPRINTABLE = dict.fromkeys([*range(0x20), 0x7F, 0x85, 0x2028, 0x2029])


def _one_line(text: str) -> str:
    """A message line with any line break or control character a value carried escaped."""
    if not any(ord(c) in _UNPRINTABLE for c in text):
        return text
    return "".join(
        c.encode("unicode_escape").decode("ascii") if ord(c) in _UNPRINTABLE else c for c in text
    )


def _fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
        line = _one_line(line)
        click.echo(f"mspflow: {line}" if not line.startswith("  ") else line, err=True)
    sys.exit(code)


class _Group(click.Group):
    """A group that turns every mspflow error into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (DefinitionError, GateNotMet) as exc:
            _fail(exc.lines(), exc.exit_code)
        except MspflowError as exc:
            _fail([str(exc)], exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            _fail(["interrupted; nothing half-written was kept"], 130)
        except BrokenPipeError:  # the reader stopped early (``| head``): end quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except Exception as exc:  # a bug: keep the promise of one line, offer the detail
            storage = _storage_error(ctx, exc)
            if storage is not None:
                _fail([str(storage)], storage.exit_code)
            if os.environ.get("MSPFLOW_DEBUG"):
                raise
            _fail(
                [
                    f"internal error: {type(exc).__name__}: {exc} "
                    "(rerun with MSPFLOW_DEBUG=1 for the traceback, and please report it)"
                ],
                1,
            )


def _storage_error(ctx: click.Context, exc: Exception) -> MspflowError | None:
    """What the database said (busy, read-only, full, damaged, unreachable) as exit 9."""
    if not type(exc).__module__.startswith(("sqlalchemy", "sqlite3", "psycopg")):
        return None
    from mspflow.store import storage_error

    app = ctx.find_object(App)
    url = (app.opened or app.url) if app is not None else ""
    return storage_error(exc, url)


class _Root(_Group):
    """The ``mspflow`` group: click's own usage errors also end as one line and exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = f" ('{exc.ctx.command_path} --help' shows the usage)" if exc.ctx else ""
            _fail([f"{exc.format_message()}{where}"], exc.exit_code)
        except click.ClickException as exc:
            _fail([exc.format_message()], exc.exit_code)
        except click.Abort:
            _fail(["interrupted; nothing half-written was kept"], 130)
        sys.exit(code if isinstance(code, int) else 0)


def emit(data: Any, as_json: bool, text: Callable[[], str] | str) -> None:
    """Print ``data`` as JSON, or the human text."""
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(text() if callable(text) else text)


# Annotated so that the command modules importing them (cli_*.py) type-check.
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
json_option: Decorator = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (stable keys)."
)

_EPILOG = "Exit codes: " + "; ".join(f"{k} {v.split(':')[0]}" for k, v in EXIT_CODES.items())


class App:
    """What commands share: the database, the clock and the acting user, made on first use.

    Opening the database is where access is checked, once for every command:
    the acting user must be a user of that database (exit 6 when none is named,
    4 when the name is unknown); roles are checked by the services.
    """

    def __init__(self, db: str | None, actor: str | None, now: str | None) -> None:
        self.db = db
        self.actor_name = actor
        self.now = now
        #: The database a command opened, if not the one ``url`` names (the demo's).
        self.opened: str | None = None
        self._engine: Any = None
        self._service: Any = None
        self._actor: Any = None

    @property
    def url(self) -> str:
        from mspflow.store import resolve_url

        return resolve_url(self.db)

    def persistent_url(self) -> str:
        """``url``, refused (exit 7) when it names an in-memory database."""
        from mspflow.store import is_in_memory, redact

        url = self.url
        if is_in_memory(url):
            raise InvalidInput(
                f"{redact(url)} is an in-memory database: it would be gone when the command ends",
                hint="name a file (--db PATH) or a PostgreSQL URL",
                field="db",
            )
        return url

    def known_actor(self, engine: Any) -> Any:
        """The acting user, found in ``engine``'s database (exit 6 if none given, 4 if unknown)."""
        from mspflow.auth import actor_name, find_actor
        from mspflow.store import read_session

        with read_session(engine) as s:
            return find_actor(s, actor_name(self.actor_name))

    def clock(self) -> Any:
        from mspflow.clock import ManualClock, SystemClock, parse_instant

        if self.now:
            try:
                return ManualClock(parse_instant(self.now))
            except ValueError:
                raise InvalidInput(f"--now '{self.now}' is not an ISO 8601 instant") from None
        return SystemClock()

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from mspflow.store import check_schema, make_engine

            engine = make_engine(self.persistent_url())
            try:
                check_schema(engine)
                self._actor = self.known_actor(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    @property
    def service(self) -> Any:
        if self._service is None:
            from mspflow.engine import PartnershipService

            self._service = PartnershipService(self.engine, self.clock())
        return self._service

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def actor(self) -> Any:
        """The acting user, checked when the database was opened."""
        _ = self.engine  # opening the database finds the actor
        return self._actor


pass_app: Decorator = click.make_pass_decorator(App)


@click.group(cls=_Root, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
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


# --------------------------------------------------------------------------- workflow


@main.group(cls=_Group)
def workflow() -> None:
    """List, show, validate and draw workflow definitions."""


@workflow.command("list")
@json_option
def workflow_list(as_json: bool) -> None:
    """The bundled workflow definitions."""
    from mspflow.definition import bundled_workflows

    wfs = bundled_workflows()
    data = [
        {
            "name": w.name,
            "version": w.version,
            "title": w.title,
            "steps": len(w.steps),
            "content_hash": w.content_hash,
        }
        for w in wfs
    ]
    emit(data, as_json, lambda: "\n".join(f"{w.name} {w.version}  {w.title}" for w in wfs))


@workflow.command("show")
@click.argument("name")
@json_option
def workflow_show(name: str, as_json: bool) -> None:
    """Modules, steps, tasks and gates of workflow NAME (or a definition file)."""
    from mspflow.definition import find_workflow
    from mspflow.definition.render import to_dict, to_outline

    wf = find_workflow(name)
    emit(to_dict(wf), as_json, lambda: to_outline(wf))


@workflow.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
def workflow_validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check definition FILES; list every problem (exit 7) or confirm them (exit 0)."""
    from mspflow.definition import load_workflow

    results: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in files:
        try:
            wf = load_workflow(path)
        except DefinitionError as exc:
            problems.extend(exc.lines())
            results.append(
                {
                    "file": path,
                    "ok": False,
                    "problems": [{"line": p.line, "message": p.message} for p in exc.problems],
                }
            )
        else:
            results.append(
                {
                    "file": path,
                    "ok": True,
                    "name": wf.name,
                    "version": wf.version,
                    "content_hash": wf.content_hash,
                    "problems": [],
                }
            )
    if as_json:
        emit(results, True, "")
    else:
        for r in results:
            if r["ok"]:
                click.echo(f"ok {r['file']}: {r['name']} {r['version']}")
    if problems:
        _fail(problems if not as_json else [], DefinitionError.exit_code)


@workflow.command("diagram")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Mermaid (Markdown, GitHub) or Graphviz DOT.",
)
def workflow_diagram(name: str, fmt: str) -> None:
    """Print a state diagram of workflow NAME."""
    from mspflow.definition import find_workflow
    from mspflow.definition.render import to_dot, to_mermaid

    wf = find_workflow(name)
    click.echo(to_dot(wf) if fmt == "dot" else to_mermaid(wf), nl=False)


# --------------------------------------------------------------------------- set-up


@main.command()
@click.option("--admin", required=True, metavar="NAME", help="First secretariat user.")
@click.option("--email", help="The first user's email address.")
@pass_app
def init(app: App, admin: str, email: str | None) -> None:
    """Create the database and its first secretariat user."""
    from mspflow.store import create_schema, make_engine, where
    from mspflow.users import add_user

    url = app.persistent_url()
    engine = make_engine(url, create_dirs=True)
    try:
        create_schema(engine)
        created = add_user(engine, app.clock(), None, admin, "secretariat", email, first=True)
    finally:
        engine.dispose()  # its connections would otherwise stay open until exit
    click.echo(
        f"database ready at {where(url)}; "
        + (f"user {admin} (secretariat) created" if created else f"user {admin} already exists")
    )


@main.group(cls=_Group)
def user() -> None:
    """Users and their roles (secretariat, partner, auditor)."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["secretariat", "partner", "auditor"]))
@click.option("--email")
@pass_app
def user_add(app: App, name: str, role: str, email: str | None) -> None:
    """Add a user (secretariat only)."""
    from mspflow.users import add_user

    add_user(app.engine, app.clock(), app.actor(), name, role, email)
    click.echo(f"user {name} ({role}) added")


@user.command("list")
@json_option
@pass_app
def user_list(app: App, as_json: bool) -> None:
    """Users of this database."""
    from mspflow.users import list_users

    users = list_users(app.engine)
    emit(
        users,
        as_json,
        lambda: "\n".join(f"{u['name']} ({u['role']}) {u['email'] or ''}" for u in users),
    )


# --------------------------------------------------------------------------- partnerships


@main.group(cls=_Group)
def partnership() -> None:
    """Create, list and show partnerships."""


@partnership.command("create")
@click.argument("name")
@click.option("--id", "slug", help="Short id (default: made from the name).")
@click.option(
    "--workflow",
    "workflow_name",
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
    workflow_name: str,
    at_step: str | None,
    timezone: str,
    as_json: bool,
) -> None:
    """Create a partnership NAME at step 1, or onboard it at --at-step."""
    from pathlib import Path

    from mspflow.definition import find_workflow
    from mspflow.store import read_session
    from mspflow.views import partnership_dict, partnership_text

    wf = find_workflow(workflow_name)
    text = Path(wf.source).read_text(encoding="utf-8")
    p = app.service.create(
        app.actor(),
        name=name,
        wf=wf,
        definition_text=text,
        slug=slug,
        at_step=at_step,
        timezone=timezone,
    )
    with read_session(app.engine) as s:
        data = partnership_dict(app.service, s, app.service.get(s, p.slug), detail=False)
    emit(data, as_json, lambda: "created " + partnership_text(data))


@partnership.command("list")
@click.option("--step", help="Only partnerships at this step (number or id).")
@json_option
@pass_app
def partnership_list(app: App, step: str | None, as_json: bool) -> None:
    """The portfolio: every partnership with its step and status."""
    from sqlmodel import col, select

    from mspflow.store import models, read_session
    from mspflow.views import partnership_dict

    with read_session(app.engine) as s:
        rows = s.exec(select(models.Partnership).order_by(col(models.Partnership.id))).all()
        data = [partnership_dict(app.service, s, p, detail=False) for p in rows]
    if step is not None:
        data = [
            d for d in data if d["step"] and step in (str(d["step"]["number"]), d["step"]["id"])
        ]

    def text() -> str:
        lines = []
        for d in data:
            where = (
                f"{d['step']['number']:>2} {d['step']['name']}"
                if d["step"]
                else f"   closed: {d['final_state']}"
            )
            lines.append(f"{d['id']:<28} {where:<36} {d['name']}")
        return "\n".join(lines) or "no partnerships yet"

    emit(data, as_json, text)


@partnership.command("show")
@click.argument("ref", metavar="P")
@json_option
@pass_app
def partnership_show(app: App, ref: str, as_json: bool) -> None:
    """Current step and module, every exit criterion and what would satisfy it."""
    from mspflow.store import read_session
    from mspflow.views import partnership_dict, partnership_text

    with read_session(app.engine) as s:
        data = partnership_dict(app.service, s, app.service.get(s, ref))
    emit(data, as_json, lambda: partnership_text(data))


def _moved(app: App, move: Any, as_json: bool) -> None:
    from mspflow.store import read_session
    from mspflow.views import partnership_dict

    with read_session(app.engine) as s:
        data = partnership_dict(app.service, s, app.service.get(s, move.partnership), detail=False)
    data["event"] = move.seq
    data["waived"] = move.waived
    where = (
        f"step {data['step']['number']} {data['step']['name']}"
        if data["step"]
        else f"closed: {data['final_state']}"
    )
    extra = f" (waived: {', '.join(move.waived)})" if move.waived else ""
    emit(data, as_json, f"{move.partnership}: now at {where}{extra} [event #{move.seq}]")


expect_option: Decorator = click.option(
    "--expect-version", type=int, help="Refuse (exit 5) unless the partnership is at this version."
)


@main.command()
@click.argument("ref", metavar="P")
@click.option("--to", "dest", help="Destination step where several are possible (e.g. 7 or 11).")
@click.option("--reason", help="Why (kept in the history).")
@expect_option
@json_option
@pass_app
def advance(
    app: App,
    ref: str,
    dest: str | None,
    reason: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Move P on through the exit gate of its current step."""
    move = app.service.move(
        app.actor(), ref, kind="advance", dest=dest, reason=reason, expect_version=expect_version
    )
    _moved(app, move, as_json)


@main.command()
@click.argument("ref", metavar="P")
@click.argument("step")
@click.option("--reason", required=True, help="Why the partnership goes back.")
@expect_option
@json_option
@pass_app
def revisit(
    app: App, ref: str, step: str, reason: str, expect_version: int | None, as_json: bool
) -> None:
    """Take P back to STEP (foundational steps 1-3, or 7 -> 5 when roles change)."""
    move = app.service.move(
        app.actor(), ref, kind="revisit", dest=step, reason=reason, expect_version=expect_version
    )
    _moved(app, move, as_json)


@main.command()
@click.argument("ref", metavar="P")
@click.argument("criterion")
@click.option("--reason", required=True, help="Why the criterion cannot be met.")
@click.option("--step", help="An earlier step whose gate debt this settles.")
@expect_option
@json_option
@pass_app
def waive(
    app: App,
    ref: str,
    criterion: str,
    reason: str,
    step: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Waive CRITERION of P's current step (or gate debt of --step), with a reason."""
    event = app.service.waive(
        app.actor(), ref, criterion, reason, step, expect_version=expect_version
    )
    emit(
        {"id": ref, "criterion": criterion, "event": event.seq},
        as_json,
        f"{ref}: {criterion} waived [event #{event.seq}]",
    )


@main.command()
@click.argument("ref", metavar="P")
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
    ref: str,
    outcome: str,
    reason: str | None,
    note: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Move P on from step 12 with an outcome (task 12.1)."""
    move = app.service.move(
        app.actor(),
        ref,
        kind="conclude",
        outcome=outcome,
        reason=reason,
        note=note,
        expect_version=expect_version,
    )
    _moved(app, move, as_json)


@main.command("scale-up")
@click.argument("ref", metavar="P")
@click.option(
    "--dimension",
    "dimensions",
    multiple=True,
    required=True,
    help="social, physical, political or conceptual (repeatable).",
)
@click.option("--description", required=True)
@click.option("--replicate", "replica", metavar="NAME", help="Create a linked replica MSP.")
@click.option("--start-step", help="Where the replica starts (1 or 4).")
@expect_option
@json_option
@pass_app
def scale_up(
    app: App,
    ref: str,
    dimensions: tuple[str, ...],
    description: str,
    replica: str | None,
    start_step: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Record P's scale-up decision (task 11.1), optionally replicating it."""
    decision, child = app.service.scale_up(
        app.actor(),
        ref,
        dimensions=list(dimensions),
        description=description,
        replica_name=replica,
        replica_step=start_step,
        expect_version=expect_version,
    )
    data = {"id": ref, "decision": decision.id, "replica": child.slug if child else None}
    emit(
        data,
        as_json,
        f"{ref}: scale-up decided ({', '.join(dimensions)})"
        + (f"; replica {child.slug} created" if child else ""),
    )


@main.command("history")
@click.argument("ref", metavar="P")
@json_option
@pass_app
def history_cmd(app: App, ref: str, as_json: bool) -> None:
    """P's timeline: who moved it where and when, why, on what evidence, what was waived.

    Oldest first. Each move lists the evidence its gate saw, the waivers that
    let it pass (with their author and reason) and any gate debt it left.
    """
    from mspflow.engine import definition_for
    from mspflow.store import read_session
    from mspflow.views import event_dict, timeline

    with read_session(app.engine) as s:
        p = app.service.get(s, ref)
        wf = definition_for(s, p)
        events = app.service.history(s, p)
        title = f"{p.slug}: {p.name} ({p.workflow_name} {p.workflow_version}), {len(events)} events"
    emit(
        [event_dict(e) for e in events],
        as_json,
        lambda: "\n".join([title, *timeline(events, wf)]),
    )


@main.group(cls=_Group)
def debt() -> None:
    """Gate debt: criteria of steps skipped when a partnership was onboarded."""


@debt.command("list")
@click.argument("ref", metavar="P")
@json_option
@pass_app
def debt_list(app: App, ref: str, as_json: bool) -> None:
    """Every skipped criterion of P and whether it is open, backfilled or waived."""
    from mspflow.engine import definition_for
    from mspflow.store import read_session

    with read_session(app.engine) as s:
        p = app.service.get(s, ref)
        wf = definition_for(s, p)
        rows = [
            {
                "step": wf.step(d.step).number,
                "criterion": d.criterion,
                "task": d.task,
                "status": d.status,
                "event": d.resolved_seq,
            }
            for d in app.service.gate_debt(s, p)
        ]
    emit(
        rows,
        as_json,
        lambda: (
            "\n".join(
                f"step {r['step']:>2} task {r['task']:<5} {r['criterion']:<28} {r['status']}"
                for r in rows
            )
            or "no gate debt"
        ),
    )


@debt.command("backfill")
@click.argument("ref", metavar="P")
@expect_option
@json_option
@pass_app
def debt_backfill(app: App, ref: str, expect_version: int | None, as_json: bool) -> None:
    """Settle each open gate debt of P that the recorded evidence now meets."""
    settled, still = app.service.backfill(app.actor(), ref, expect_version=expect_version)
    emit(
        {"settled": settled, "open": still},
        as_json,
        f"{ref}: {len(settled)} settled, {len(still)} still open",
    )


# --------------------------------------------------------------------------- evidence


#: The kinds of evidence, as in :data:`mspflow.evidence.RECORDS` (a test keeps
#: them equal). Listed here so that ``--help`` does not import the store.
RECORD_KINDS = (
    "profile", "scope", "governance", "decision-making", "sdg", "objective", "partner",
    "resource", "risk", "signature", "component", "component-lead", "activity", "leadership",
    "leadership-agreement", "schedule", "meeting", "health-check", "monitoring", "report",
    "panel-member", "review", "revision", "lesson", "attestation",
)  # fmt: skip


class _LazyGroup(_Group):
    """A group some of whose commands are built from the evidence specs on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})  # command name -> kind of record

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self.lazy:
            command = _record_command(self.lazy[name])
            self.add_command(command, name)
        return command


@main.group(cls=_LazyGroup, lazy={kind: kind for kind in RECORD_KINDS})
def record() -> None:
    """Record evidence the exit gates read (one command per kind of record)."""


def _record_command(kind: str) -> click.Command:
    from mspflow.evidence import RECORDS

    spec = RECORDS[kind]

    @pass_app
    def run(app: App, /, ref: str, as_json: bool, **values: Any) -> None:
        from mspflow.evidence import record as record_evidence

        values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
        row = record_evidence(app.service, app.actor(), ref, kind, values)
        rid = getattr(row, "id", None)
        emit(
            {"id": ref, "kind": kind, "record": rid},
            as_json,
            f"{ref}: {kind} recorded" + (f" (#{rid})" if rid else ""),
        )

    params: list[click.Parameter] = [click.Argument(["ref"], metavar="P")]
    for f in spec.fields:
        if f.argument:
            params.append(click.Argument([f.name], metavar=f.name.upper()))
        elif f.type == "bool":
            params.append(
                click.Option([f.option, f.name], is_flag=True, default=None, help=f.help or None)
            )
        else:
            choice = click.Choice(f.choices) if f.type == "choice" else None
            params.append(
                click.Option(
                    [f.option, f.name],
                    type=choice,
                    multiple=f.multiple,
                    help=f.help or ("a date, YYYY-MM-DD" if f.type == "date" else None),
                )
            )
    params.append(click.Option(["--json", "as_json"], is_flag=True, help="Print JSON."))
    return click.Command(kind, callback=run, params=params, help=f"{spec.help} (task {spec.task})")


@record.command("resource-mobilized")
@click.argument("ref", metavar="P")
@click.argument("resource_id", type=int)
@pass_app
def record_mobilized(app: App, ref: str, resource_id: int) -> None:
    """A committed resource has been mobilized (task 6.2)."""
    from mspflow.evidence import mobilize

    mobilize(app.service, app.actor(), ref, resource_id)
    click.echo(f"{ref}: resource #{resource_id} mobilized")


@main.command("attest")
@click.argument("ref", metavar="P")
@click.argument("task")
@click.option("--note", required=True, help="What was done.")
@click.option("--link", help="Where the proof is.")
@pass_app
def attest(app: App, ref: str, task: str, note: str, link: str | None) -> None:
    """Attest that TASK of P is done (for judgment-call criteria)."""
    from mspflow.evidence import record as record_evidence

    record_evidence(
        app.service, app.actor(), ref, "attestation", {"task": task, "note": note, "link": link}
    )
    click.echo(f"{ref}: task {task} attested")


@main.group(cls=_LazyGroup, lazy={"add": "partner"})
def partner() -> None:
    """Partner organizations of a partnership."""


@partner.command("list")
@click.argument("ref", metavar="P")
@json_option
@pass_app
def partner_list(app: App, ref: str, as_json: bool) -> None:
    """P's partners."""
    from mspflow.store import read_session
    from mspflow.views import partnership_dict

    with read_session(app.engine) as s:
        rows = partnership_dict(app.service, s, app.service.get(s, ref))["partners"]
    emit(
        rows,
        as_json,
        lambda: (
            "\n".join(
                f"#{r['id']} {r['name']} ({r['sector']}) {r['contact'] or ''}"
                + ("" if r["active"] else " [inactive]")
                for r in rows
            )
            or "no partners yet"
        ),
    )


@partner.command("update")
@click.argument("ref", metavar="P")
@click.argument("name", metavar="PARTNER")
@click.option("--sector")
@click.option("--contact")
@click.option("--email")
@click.option("--can-decide/--cannot-decide", default=None)
@click.option("--objectives", help="The partner's own objectives (task 2.2).")
@click.option("--accountable-to", help="To whom the partner is accountable (task 3.5).")
@click.option("--active/--inactive", default=None, help="Inactive partners leave the gates.")
@pass_app
def partner_update(app: App, /, ref: str, name: str, **values: Any) -> None:
    """Change details of PARTNER in P."""
    from mspflow.evidence import update_partner

    update_partner(app.service, app.actor(), ref, name, values)
    click.echo(f"{ref}: partner {name} updated")


@main.group(cls=_LazyGroup, lazy={"add": "schedule"})
def schedule() -> None:
    """Agreed cadences: coordination meetings, monitoring, reviews (FRAMEWORK 4)."""


@main.command("import")
@click.argument("ref", metavar="P")
@click.argument("path", type=click.Path(dir_okay=False))
@json_option
@pass_app
def import_cmd(app: App, ref: str, path: str, as_json: bool) -> None:
    """Record evidence for P in bulk from a YAML list or a CSV file (all or nothing).

    Each row names its kind of record with `record` (as in 'mspflow record KIND')
    and gives its fields; `kind` is still read for that where the kind of record
    has no `kind` field. UTF-8, with or without a byte-order mark. Every row is
    checked before anything is written.
    """
    from pathlib import Path

    from mspflow.evidence import import_file

    counts = import_file(app.service, app.actor(), ref, Path(path))
    emit(
        counts, as_json, f"{ref}: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + " recorded"
    )




# --------------------------------------------------------------------------- demo


@main.command()
@click.option(
    "--db",
    "demo_db",
    type=click.Path(dir_okay=False),
    help="Keep the demo database in this new file (default: a temporary one); "
    "the global --db works too.",
)
@click.option("--force", is_flag=True, help="Replace the file at --db if there is one.")
@pass_app
def demo(app: App, demo_db: str | None, force: bool) -> None:
    """Run the demonstration story on a fresh embedded database.

    An existing file is never replaced unless --force says so; the audit
    exports go to a new temporary folder, named in the output.
    """
    from mspflow.demo import demo_path, run_demo
    from mspflow.errors import UsageError

    if demo_db and app.db and demo_db != app.db:
        raise UsageError(
            f"two databases for the demo: --db {app.db} and demo --db {demo_db}",
            hint="give one of them",
        )
    path = demo_path(demo_db or app.db, force=force)
    if path is not None:
        app.opened = f"sqlite:///{path}"
    run_demo(click.echo, path, force=force)


# --------------------------------------------------------------------------- more groups
# Defined in their own modules (which import this one), attached here.

from mspflow.cli_audit import audit  # noqa: E402
from mspflow.cli_db import db  # noqa: E402
from mspflow.cli_schedule import (  # noqa: E402
    calendar,
    remind,
    schedule_fired,
    schedule_list,
    schedule_status,
    scheduler,
)

main.add_command(audit)
main.add_command(db)
main.add_command(remind)
main.add_command(scheduler)
main.add_command(calendar)
for _command in (schedule_list, schedule_status, schedule_fired):
    schedule.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
