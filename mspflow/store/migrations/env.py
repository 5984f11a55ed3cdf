"""Alembic's entry point: runs the revisions on the connection mspflow hands over.

``mspflow.store.migrations.upgrade`` opens the transaction and passes its
connection in ``config.attributes``; everything then happens inside that one
transaction. Run by hand (e.g. ``alembic revision --autogenerate`` through
``mspflow.store.migrations.config()``), it connects to the database named by
``MSPFLOW_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from mspflow.store import models

assert models.SCHEMA_VERSION  # the import registers the tables on the metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=SQLModel.metadata,
        transactional_ddl=True,
        render_as_batch=True,  # SQLite can only ALTER by copying the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    from mspflow.store.db import make_engine, resolve_url

    engine = make_engine(resolve_url(None))
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


_main()
