"""The auditor's operations: the log, chain verification, anchors, exports, conformance.

Everything here reads, through an engine that cannot write (SQLite
``mode=ro``; read-only transactions on PostgreSQL), and only for the roles
that audit: auditors, and the secretariat for its own records. A secretariat
scoped to assigned partnerships sees the log, exports and conformance of those
only; the chain itself is verified whole, for it is one chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlmodel import Session, col, select

from mspflow.services.readmodels import EventView, Exported
from mspflow.store import models as m

if TYPE_CHECKING:
    from mspflow.audit.conformance import Report
    from mspflow.audit.verify import Anchor, Verified
    from mspflow.services.context import Context

__all__ = ["AUDIT_ROLES", "Audit"]

#: Auditors read everything; the secretariat may check its own records too.
AUDIT_ROLES = ("auditor", "secretariat")


class Audit:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _engine(self) -> Any:
        engine = self.ctx.read_only_engine()
        self.ctx.policy.require_role(*AUDIT_ROLES, action="run audit commands")
        return engine

    def _scope(self, s: Session, partnerships: Sequence[str]) -> Sequence[str] | None:
        """The partnerships asked for, each one the actor may read; or, when none is
        asked for, the ones the actor may see (None: all of them; []: none)."""
        from mspflow.store.lookup import find

        policy = self.ctx.policy
        for ref in partnerships:
            policy.check_read(s, find(s, ref))
        if partnerships:
            return partnerships
        visible = policy.visible(s)
        if visible is None:
            return None
        return list(
            s.exec(select(m.Partnership.slug).where(col(m.Partnership.id).in_(sorted(visible))))
        )

    def log(
        self,
        *,
        partnerships: Sequence[str] = (),
        actors: Sequence[str] = (),
        kinds: Sequence[str] = (),
        step: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[EventView]:
        """Matching events of the portfolio, oldest first, streamed.

        The filters are checked before the first event is returned.
        """
        from mspflow.audit.queries import Definitions, LogFilter, iter_events
        from mspflow.services.partnerships import event_view
        from mspflow.store import read_session

        engine = self._engine()
        with read_session(engine) as s:
            scope = self._scope(s, partnerships)
            if scope == []:
                return
            f = LogFilter(scope or (), actors, kinds, step, since, until)
            events = iter_events(s, f)
            defs = Definitions(s)
            yield from (event_view(e, defs.by_label(e.definition)) for e in events)

    def verify(self, *, anchor: Anchor | None = None) -> Verified:
        """Recompute the hash chain (and compare it with ``anchor``); AuditFailure naming
        the first event that does not verify."""
        from mspflow.audit.verify import verify_chain

        return verify_chain(self._engine(), anchor=anchor)

    def anchor(self) -> Anchor:
        """The newest event as SEQ:HASH, to keep outside the system."""
        from mspflow.audit.verify import head_anchor

        return head_anchor(self._engine())

    def export(
        self,
        *,
        format: str,
        out: TextIO | None = None,
        path: str | Path | None = None,
        partnerships: Sequence[str] = (),
    ) -> Exported:
        """The history as csv, jsonl, xes or ocel, to ``out`` or into ``path``
        (written through to what the path is: :func:`mspflow.outfile.write_output`)."""
        from mspflow.audit import export as exporting
        from mspflow.store import read_session

        engine = self._engine()
        with read_session(engine) as s:
            scope = self._scope(s, partnerships)
            if out is not None:
                done = exporting.export(s, format, out, scope or (), none=scope == [])
            else:
                assert path is not None
                done = exporting.export_file(s, format, path, scope or (), none=scope == [])
        return Exported(
            done.format, str(done.path) if done.path else "", done.cases, done.events,
            dict(done.objects),
        )  # fmt: skip

    def conformance(self, *, partnerships: Sequence[str] = ()) -> Report:
        """Replay each history against its pinned definition; every deviation."""
        from mspflow.audit.conformance import Report, check
        from mspflow.store import read_session

        with read_session(self._engine()) as s:
            scope = self._scope(s, partnerships)
            return Report(partnerships=0) if scope == [] else check(s, scope or ())
