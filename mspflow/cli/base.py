"""The click plumbing every command group shares.

- :class:`App`, the typed context object: the global options (``--db``,
  ``--as``, ``--now``) and the :class:`~mspflow.services.Mspflow` facade made
  from them on first use;
- :func:`emit`, which prints a read model as JSON (``--json``) or as text;
- the one mapping of errors to what a terminal user needs: an exit code per
  error code (:data:`EXIT_CODES`), and the option or argument of the running
  command that an error's field names (:func:`flag_for`).

Heavy modules are imported inside the commands that need them, so that
``mspflow --help`` starts quickly.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from mspflow.errors import CODES, DefinitionError, GateNotMet, MspflowError

if TYPE_CHECKING:
    from mspflow.clock import Clock
    from mspflow.services import Mspflow

__all__ = [
    "ACTION_COMMANDS",
    "EXIT_CODES",
    "EXIT_MEANINGS",
    "App",
    "Group",
    "Root",
    "emit",
    "expect_option",
    "fail",
    "flag_for",
    "json_option",
    "pass_app",
]

#: The exit code of each error code (README, "Exit codes"); 0 is success, 1 a bug.
EXIT_CODES: dict[str, int] = {
    "usage": 2,
    "gate-not-met": 3,
    "not-found": 4,
    "conflict": 5,
    "not-permitted": 6,
    "invalid": 7,
    "audit-failure": 8,
    "storage": 9,
    "delivery": 10,
    "partial": 11,
}

#: What each exit code means, for --help and the README.
EXIT_MEANINGS: dict[int, str] = {
    0: "success",
    1: "internal error (a bug: please report it)",
    **{EXIT_CODES[code]: f"{code.replace('-', ' ')}: {text}" for code, text in CODES.items()},
}

#: The command that does each operation an error may name as its fix
#: (:data:`mspflow.errors.ACTIONS`).
ACTION_COMMANDS: dict[str, str] = {"init": "mspflow init", "upgrade": "mspflow db upgrade"}

#: Fields whose name differs from the option that gives them, wherever they appear.
_FIELD_OPTIONS = {
    "actor": "--as or MSPFLOW_ACTOR",
    "db": "--db or MSPFLOW_DATABASE_URL",
    "now": "--now or MSPFLOW_NOW",
}


def exit_code(exc: MspflowError) -> int:
    return EXIT_CODES.get(exc.code, 1)


def flag_for(
    ctx: click.Context | None, field: str | None, command: click.Command | None = None
) -> str | None:
    """The option (``--reason``) or argument (``P``) of the running ``command``, or of a
    group above it, that gives the value ``field`` names; None if none does."""
    if not field:
        return None
    if field in _FIELD_OPTIONS:
        return _FIELD_OPTIONS[field]
    commands = [command] if command is not None else []
    while ctx is not None:
        commands.append(ctx.command)
        ctx = ctx.parent
    for cmd in commands:
        for param in cmd.params:
            if param.name == field:
                if isinstance(param, click.Option):
                    longs = [o for o in param.opts if o.startswith("--")]
                    return (longs or param.opts)[0]
                return param.human_readable_name
    return None


def fail(lines: Iterable[str], code: int) -> NoReturn:
    """Print each line as ``mspflow: ...`` (details indented) on stderr, and exit."""
    from mspflow.inputs import escaped

    for line in lines:
        line = escaped(line)
        click.echo(f"mspflow: {line}" if not line.startswith("  ") else line, err=True)
    sys.exit(code)


def _lines(
    exc: MspflowError, ctx: click.Context | None, command: click.Command | None
) -> list[str]:
    """What a terminal user reads for ``exc``: its line, naming the option at fault."""
    if isinstance(exc, DefinitionError | GateNotMet):
        return exc.lines()
    flag = flag_for(ctx, exc.field, command)
    hint = exc.hint
    run = ACTION_COMMANDS.get(exc.action or "")
    if run is not None:
        hint = f"{hint}: '{run}'" if hint else f"'{run}'"
    text = f"{exc.message} ({hint})" if hint else exc.message
    if flag and flag.startswith("-") and flag not in text:  # an option, not an argument
        text = f"{text} [{flag}]"
    return [text]


class Group(click.Group):
    """A group that turns every mspflow error into one line and an exit code."""

    def _leaf(self, ctx: click.Context) -> click.Command | None:
        """The subcommand that ran (the innermost group catches its errors first)."""
        name = ctx.invoked_subcommand
        command = self.get_command(ctx, name) if name else None
        return None if isinstance(command, click.Group) else command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MspflowError as exc:
            fail(_lines(exc, ctx, self._leaf(ctx)), exit_code(exc))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            fail(["interrupted; nothing half-written was kept"], 130)
        except BrokenPipeError:  # the reader stopped early (``| head``): end quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except Exception as exc:  # a bug: keep the promise of one line, offer the detail
            storage = _storage_error(ctx, exc)
            if storage is not None:
                fail(_lines(storage, ctx, self._leaf(ctx)), exit_code(storage))
            if os.environ.get("MSPFLOW_DEBUG"):
                raise
            fail(
                [
                    f"internal error: {type(exc).__name__}: {exc} "
                    "(rerun with MSPFLOW_DEBUG=1 for the traceback, and please report it)"
                ],
                1,
            )


def _storage_error(ctx: click.Context, exc: Exception) -> MspflowError | None:
    """What the database said (busy, read-only, full, damaged, unreachable), as storage."""
    if not type(exc).__module__.startswith(("sqlalchemy", "sqlite3", "psycopg")):
        return None
    from mspflow.store import storage_error

    app = ctx.find_object(App)
    url = ""
    if app is not None:
        try:
            url = app.opened or app.url
        except MspflowError:
            url = ""
    return storage_error(exc, url)


def _cut(text: str, limit: int = 60) -> str:
    """click's messages quote what was typed in full; a huge value is cut short, as
    mspflow's own messages cut it (:func:`mspflow.inputs.shown`)."""
    return re.sub(rf"\S{{{limit + 1},}}", lambda m: m.group()[: limit - 1] + "…", text)


class Root(Group):
    """The ``mspflow`` group: click's own usage errors also end as one line and exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = f" ('{exc.ctx.command_path} --help' shows the usage)" if exc.ctx else ""
            fail([f"{_cut(exc.format_message())}{where}"], exc.exit_code)
        except click.ClickException as exc:
            fail([_cut(exc.format_message())], exc.exit_code)
        except click.Abort:
            fail(["interrupted; nothing half-written was kept"], 130)
        sys.exit(code if isinstance(code, int) else 0)


def emit(data: Any, as_json: bool, text: Callable[[], str] | str) -> None:
    """Print ``data`` (a read model, a list of them, or plain JSON data) as JSON, or the text."""
    if as_json:
        click.echo(json.dumps(to_json(data), indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(text() if callable(text) else text)


def to_json(data: Any) -> Any:
    from mspflow.services.readmodels import ReadModel

    if isinstance(data, ReadModel):
        return data.to_json()
    if isinstance(data, list | tuple):
        return [to_json(d) for d in data]
    return data


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
json_option: Decorator = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (stable keys)."
)
expect_option: Decorator = click.option(
    "--expect-version", type=int, help="Refuse (exit 5) unless the partnership is at this version."
)

EPILOG = "Exit codes: " + "; ".join(f"{k} {v.split(':')[0]}" for k, v in EXIT_MEANINGS.items())


class App:
    """What commands share: the global options, and the facade made from them.

    Opening the database is where access is checked, once for every command:
    the acting user must be a user of that database (exit 6 when none is named,
    4 when the name is unknown).
    """

    def __init__(self, db: str | None, actor: str | None, now: str | None) -> None:
        self.db = db
        self.actor_name = actor
        self.now = now
        #: The database a command opened, if not the one ``url`` names (the demo's).
        self.opened: str | None = None
        self._mspflow: Mspflow | None = None

    @property
    def url(self) -> str:
        from mspflow.store import resolve_url

        return resolve_url(self.db)

    def clock(self) -> Clock:
        from mspflow.clock import ManualClock, SystemClock, parse_instant
        from mspflow.errors import InvalidInput

        if self.now:
            try:
                return ManualClock(parse_instant(self.now))
            except ValueError:
                raise InvalidInput(
                    f"'{self.now}' is not an ISO 8601 instant", field="now"
                ) from None
        return SystemClock()

    @property
    def mspflow(self) -> Mspflow:
        """The facade on ``--db`` as ``--as``, made on first use."""
        if self._mspflow is None:
            from mspflow.services import Mspflow

            self._mspflow = Mspflow(self.db, clock=self.clock(), actor=self.actor_name)
        return self._mspflow

    def close(self) -> None:
        if self._mspflow is not None:
            self._mspflow.close()


pass_app: Decorator = click.make_pass_decorator(App)
