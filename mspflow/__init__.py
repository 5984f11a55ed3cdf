"""mspflow: a workflow engine for multi-stakeholder partnerships on the SDGs.

It encodes the 12-step partnership framework of the UNU-IAS/ESCAP guidelines
(2018) as auditable state machines: one per partnership, pinned to a versioned
workflow definition (see ``workflows/msp-12-step.yaml``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    # Looked up on first use: reading package metadata costs ~50 ms at start-up.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("mspflow")
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            return "0+unknown"
    raise AttributeError(f"module 'mspflow' has no attribute {name!r}")
