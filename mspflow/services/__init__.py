"""The one door to mspflow's operations: :class:`Mspflow` and its services.

Every front door (the command line, the web, an HTTP API) calls these and
nothing else; nothing here knows click, HTTP, flags or status codes. Each
service owns its transactions, takes keyword arguments only (with an optional
``session`` to compose operations in one transaction) and returns typed read
models (:mod:`.readmodels`). Who may do what is decided in one place
(:mod:`.policy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mspflow.services.facade import Mspflow

__all__ = ["Mspflow"]


def __getattr__(name: str) -> object:
    if name == "Mspflow":
        from mspflow.services.facade import Mspflow

        return Mspflow
    raise AttributeError(f"module 'mspflow.services' has no attribute {name!r}")
