"""Persistence: SQLModel tables and database set-up."""

from __future__ import annotations

from mspflow.store.db import (
    check_schema,
    create_schema,
    make_engine,
    read_session,
    resolve_url,
    write_session,
)

__all__ = [
    "check_schema",
    "create_schema",
    "make_engine",
    "read_session",
    "resolve_url",
    "write_session",
]
