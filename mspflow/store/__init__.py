"""Persistence: SQLModel tables and database set-up."""

from __future__ import annotations

from mspflow.store.db import (
    is_in_memory,
    make_engine,
    read_session,
    redact,
    resolve_url,
    storage_error,
    where,
    write_session,
)
from mspflow.store.schema import check_schema, create_schema

__all__ = [
    "check_schema",
    "create_schema",
    "is_in_memory",
    "make_engine",
    "read_session",
    "redact",
    "resolve_url",
    "storage_error",
    "where",
    "write_session",
]
