"""``mspflow db ...``: schema migrations.

Both commands name a user of the database like every other command (read from
the ``app_user`` table, which every schema revision has); ``upgrade`` needs the
secretariat role. A database without users (empty, not mspflow's, or not yet
given its first user by ``init``) has nobody to check.
"""

from __future__ import annotations

from typing import Any

import click

from mspflow.cli import App, _Group, emit, json_option, pass_app

__all__ = ["db"]


@click.group(cls=_Group)
def db() -> None:
    """Upgrade the database schema and show its revision."""


def _where(app: App) -> str:
    from mspflow.store import where

    return where(app.url)


def _check_user(app: App, engine: Any, *roles: str, action: str = "") -> None:
    """Exit 6 or 4 unless the acting user is a user (with one of ``roles``) of the database."""
    from sqlalchemy import inspect, text

    from mspflow.auth import require_role

    with engine.connect() as conn:
        if "app_user" not in inspect(conn).get_table_names():
            return
        if not conn.execute(text("SELECT count(*) FROM app_user")).scalar():
            return
    actor = app.known_actor(engine)
    if roles:
        require_role(actor, *roles, action=action)


@db.command("upgrade")
@json_option
@pass_app
def db_upgrade(app: App, as_json: bool) -> None:
    """Bring the database to this mspflow's schema (one transaction; safe to repeat).

    Back up the database first; a database made by a newer mspflow is refused.
    """
    from mspflow.store import make_engine
    from mspflow.store.migrations import upgrade

    engine = make_engine(app.persistent_url())
    try:
        _check_user(app, engine, "secretariat", action="upgrade the database")
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
    from mspflow.store import make_engine
    from mspflow.store.migrations import status

    engine = make_engine(app.persistent_url())
    try:
        _check_user(app, engine)
        found = status(engine)
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
