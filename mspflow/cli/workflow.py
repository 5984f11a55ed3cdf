"""``mspflow workflow ...``: list, show, validate and draw definitions (no database)."""

from __future__ import annotations

from typing import Any

import click

from mspflow.cli.base import Group, emit, fail, json_option

__all__ = ["register"]


@click.group(cls=Group)
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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["outline", "markdown"]),
    default="outline",
    show_default=True,
    help="markdown: the whole framework with the guideline lines of each part.",
)
@json_option
def workflow_show(name: str, fmt: str, as_json: bool) -> None:
    """Modules, steps, tasks and gates of workflow NAME (or a definition file)."""
    from mspflow.definition import find_workflow
    from mspflow.definition.render import to_dict, to_markdown, to_outline

    wf = find_workflow(name)
    if fmt == "markdown" and not as_json:
        click.echo(to_markdown(wf, guideline=GUIDELINE), nl=False)
        return
    emit(to_dict(wf), as_json, lambda: to_outline(wf))


#: What the line numbers of the bundled definition's ``source`` keys refer to.
GUIDELINE = (
    'the text of "Partnering for Sustainable Development: Guidelines for Multi-stakeholder '
    'Partnerships to Implement the 2030 Agenda in Asia and the Pacific" (UNU-IAS and ESCAP, '
    "2018) as kept in the reference corpus (seed 003)"
)


@workflow.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
def workflow_validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check definition FILES; list every problem (exit 7) or confirm them (exit 0)."""
    from mspflow.definition import load_workflow
    from mspflow.errors import DefinitionError

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
        from mspflow.cli.base import EXIT_CODES

        fail(problems if not as_json else [], EXIT_CODES["invalid"])


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


def register(main: click.Group) -> None:
    main.add_command(workflow)
