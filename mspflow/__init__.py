"""mspflow: a workflow engine for multi-stakeholder partnerships on the SDGs.

It encodes the 12-step partnership framework of the UNU-IAS/ESCAP guidelines
(2018) as auditable state machines: one per partnership, pinned to a versioned
workflow definition (see ``workflows/msp-12-step.yaml``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mspflow")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

__all__ = ["__version__"]
