"""The configuration file of a deployment: ``$MSPFLOW_CONFIG``, else ``config.toml``
in the user's configuration folder. Environment variables win over it.

Three tables are read: ``[smtp]`` (email delivery, :mod:`mspflow.scheduler.notify`),
``[access]`` (``secretariat_scope``, :mod:`mspflow.services.policy`) and ``[iati]``
(the reporting organisation of IATI exports, :mod:`mspflow.services.exports`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mspflow.errors import InvalidInput

__all__ = ["TABLES", "config_path", "read_config"]

#: The keys each table accepts, with their types.
TABLES: Mapping[str, Mapping[str, type | tuple[type, ...]]] = {
    "smtp": {
        "host": str,
        "port": int,
        "security": str,
        "username": str,
        "password_env": str,
        "sender": str,
        "ca_file": str,
        "timeout": (int, float),
    },
    "access": {"secretariat_scope": str},
    "iati": {
        "reporting_org_ref": str,
        "reporting_org_name": str,
        "reporting_org_type": str,
        "default_currency": str,
    },
}


def config_path(env: Mapping[str, str] | None = None) -> Path:
    given = (os.environ if env is None else env).get("MSPFLOW_CONFIG")
    if given:
        return Path(given).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("mspflow", appauthor=False)) / "config.toml"


def read_config(path: Path) -> dict[str, dict[str, Any]]:
    """The tables of the file at ``path`` ({} when there is none), each key checked."""
    if not path.exists():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the configuration: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: {exc}", hint="fix the TOML syntax") from None
    out: dict[str, dict[str, Any]] = {}
    for table, keys in TABLES.items():
        values = data.get(table, {})
        if not isinstance(values, dict):
            raise InvalidInput(f"{path}: [{table}] must be a table")
        for key, value in values.items():
            kind = keys.get(key)
            if kind is None:
                raise InvalidInput(
                    f"{path}: unknown key {table}.{key}", hint="known: " + ", ".join(keys)
                )
            if not isinstance(value, kind) or isinstance(value, bool):
                raise InvalidInput(
                    f"{path}: {table}.{key} has the wrong type ({type(value).__name__})"
                )
        out[table] = dict(values)
    return out
