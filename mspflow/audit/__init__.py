"""The auditor's toolkit: queries, chain verification, exports and conformance.

Everything here only reads. The audit service (:mod:`mspflow.services.audit`)
opens the database read-only before calling any of it, so an audit cannot
change what it examines even by mistake.
"""

from __future__ import annotations

__all__: list[str] = []
