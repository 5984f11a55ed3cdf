"""Creating and checking the schema of a database: the migrations' job, run from here."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from mspflow.store.db import engine_url, storage_error, where
from mspflow.store.migrations import status, upgrade

__all__ = ["check_schema", "create_schema"]


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest schema by running the migrations (idempotent).

    An empty database gets every table, the append-only triggers on the
    history and the schema_version row (revision 0001 onwards); an existing
    one is upgraded, or refused if it is not mspflow's or is newer.
    """
    try:
        upgrade(engine)
    except DBAPIError as exc:
        raise storage_error(exc, engine_url(engine)) or exc from None
    check_schema(engine)


def check_schema(engine: Engine) -> None:
    """Refuse a database whose schema this code does not know, or that needs upgrading.

    Both the ``schema_version`` row and the migration revision must be the ones
    this code was written for.
    """
    try:
        found = status(engine)
    except DBAPIError as exc:
        raise storage_error(exc, engine_url(engine)) or exc from None
    problem = found.problem(where(engine_url(engine)))
    if problem is not None:
        raise problem
