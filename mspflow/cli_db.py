"""``mspflow db ...``: schema migrations."""

from __future__ import annotations

import click

from mspflow.cli import App, _Group, emit, json_option, pass_app

__all__ = ["db"]


@click.group(cls=_Group)
def db() -> None:
    """Upgrade the database schema and show its revision."""


def _where(app: App) -> str:
    from mspflow.store.db import _redact

    return _redact(app.url).removeprefix("sqlite:///")


@db.command("upgrade")
@json_option
@pass_app
def db_upgrade(app: App, as_json: bool) -> None:
    """Bring the database to this mspflow's schema (one transaction; safe to repeat).

    Back up the database first; a database made by a newer mspflow is refused.
    """
    from mspflow.store import make_engine
    from mspflow.store.migrations import upgrade

    engine = make_engine(app.url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    data = {"database": _where(app), "from": before.revision, "to": after.revision}
    if before.revision == after.revision:
        text = f"database at {_where(app)} is up to date (revision {after.revision})"
    else:
        text = (
            f"database at {_where(app)} upgraded from revision "
            f"{before.revision or 'none'} to {after.revision}"
        )
    emit(data, as_json, text)


@db.command("current")
@json_option
@pass_app
def db_current(app: App, as_json: bool) -> None:
    """The database's schema revision and version, and whether it needs upgrading."""
    from sqlalchemy.exc import OperationalError

    from mspflow.errors import StorageError
    from mspflow.store import make_engine
    from mspflow.store.migrations import status

    engine = make_engine(app.url)
    try:
        found = status(engine)
    except OperationalError as exc:
        raise StorageError(f"cannot open the database: {exc.orig}") from None
    finally:
        engine.dispose()
    data = {"database": _where(app), **found.as_dict()}
    advice = {
        "current": "up to date",
        "behind": "run 'mspflow db upgrade'",
        "legacy": "made before migrations; run 'mspflow db upgrade'",
        "empty": "empty; run 'mspflow init'",
        "foreign": "not an mspflow database",
        "newer": "made by a newer mspflow; upgrade mspflow",
        "unknown": "unknown to this mspflow",
    }[found.state]
    emit(
        data,
        as_json,
        f"revision {found.revision or 'none'} (schema version {found.schema_version}); "
        f"this mspflow's head is {found.head}: {advice}",
    )
