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

from mspflow.errors import EXIT_CODES, DefinitionError, GateNotMet, MspflowError

__all__ = ["main"]


def _fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
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
        except Exception as exc:  # a bug: keep the promise of one line, offer the detail
            if os.environ.get("MSPFLOW_DEBUG"):
                raise
            _fail(
                [
                    f"internal error: {type(exc).__name__}: {exc} "
                    "(rerun with MSPFLOW_DEBUG=1 for the traceback, and please report it)"
                ],
                1,
            )


def emit(data: Any, as_json: bool, text: Callable[[], str] | str) -> None:
    """Print ``data`` as JSON, or the human text."""
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(text() if callable(text) else text)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys).")

_EPILOG = "Exit codes: " + "; ".join(f"{k} {v.split(':')[0]}" for k, v in EXIT_CODES.items())


@click.group(cls=_Group, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mspflow")
def main() -> None:
    """mspflow: multi-stakeholder partnerships for the SDGs, step by step.

    Each partnership moves through the 12 steps of the UNU-IAS/ESCAP
    partnership framework; every move is gated, recorded and verifiable.
    """


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


# --------------------------------------------------------------------------- demo


@main.command()
def demo() -> None:
    """Run the demonstration story."""
    from mspflow.demo import run_demo

    run_demo(click.echo)


if __name__ == "__main__":  # pragma: no cover
    main()
