"""What the services of one facade share: the database, the clock and the acting user.

The database is opened on first use, and that is where access starts: the
acting user must be a user of that database (none named: NotPermitted; a name
it does not know: NotFound). An :class:`~mspflow.auth.Actor` passed in as such
is trusted as it is (the scheduler daemon, the demo, tests).

Every service method takes an optional ``session``: given one, it works inside
that transaction (so that several operations commit together, as the
scheduler's due review does); without one, it opens and commits its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mspflow.auth import Actor
from mspflow.clock import Clock, SystemClock
from mspflow.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlmodel import Session

    from mspflow.services.policy import Policy

__all__ = ["Context"]


class Context:
    """One database, one clock, one actor; shared by the services of a facade."""

    def __init__(
        self,
        database: str | None = None,
        *,
        engine: Engine | None = None,
        clock: Clock | None = None,
        actor: str | Actor | None = None,
        secretariat_scope: str | None = None,
    ) -> None:
        self.database = database
        self.clock: Clock = clock or SystemClock()
        self._engine = engine
        self._own_engine = engine is None
        self._actor_given = actor
        self._actor: Actor | None = actor if isinstance(actor, Actor) else None
        self._scope = secretariat_scope
        self._policy: Policy | None = None
        self._read_only: Engine | None = None

    # -- where -----------------------------------------------------------------
    @property
    def url(self) -> str:
        """The database URL (``--db``, else ``MSPFLOW_DATABASE_URL``, else the default)."""
        from mspflow.store import resolve_url
        from mspflow.store.db import engine_url

        if self._engine is not None and self.database is None:
            return engine_url(self._engine)
        return resolve_url(self.database)

    def persistent_url(self) -> str:
        """``url``, refused when it names an in-memory database."""
        from mspflow.store import is_in_memory, redact

        url = self.url
        if is_in_memory(url):
            raise InvalidInput(
                f"{redact(url)} is an in-memory database: it would be gone when the work ends",
                hint="name a database file or a PostgreSQL URL",
                field="db",
            )
        return url

    # -- opening -----------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The database, opened and checked on first use (schema, then the actor)."""
        if self._engine is None:
            from mspflow.store import check_schema, make_engine

            engine = make_engine(self.persistent_url())
            try:
                check_schema(engine)
                self._engine = engine
                self._find_actor()
            except BaseException:
                self._engine = None
                engine.dispose()
                raise
        return self._engine

    def _find_actor(self, engine: Engine | None = None) -> Actor:
        """The acting user, looked up once (in ``engine``, else the database's engine)."""
        if self._actor is None:
            from mspflow.auth import actor_name, find_actor
            from mspflow.store import read_session

            given = self._actor_given if isinstance(self._actor_given, str) else None
            with read_session(engine or self.engine) as s:
                self._actor = find_actor(s, actor_name(given))
        return self._actor

    @property
    def actor(self) -> Actor:
        """The acting user, found in the database when it was opened (by the audit's
        read-only engine, when that was opened first)."""
        if self._actor is None:
            _ = self.engine
        return self._find_actor()

    @property
    def policy(self) -> Policy:
        """Who may read and change what (:mod:`mspflow.services.policy`)."""
        if self._policy is None:
            from mspflow.services.policy import Policy, secretariat_scope

            actor = self.actor
            # The deployment's setting matters only to the secretariat.
            scope = self._scope or (secretariat_scope() if actor.role == "secretariat" else "all")
            self._policy = Policy(self, actor, scope)
        return self._policy

    def read_only_engine(self) -> Engine:
        """An engine that cannot write (SQLite ``mode=ro``, PostgreSQL read-only
        transactions), for the audit; the actor is checked on it."""
        if self._read_only is None:
            if not self._own_engine:
                self._read_only = self.engine  # a caller's engine: theirs to restrict
            else:
                from mspflow.store import check_schema, make_engine

                engine = make_engine(self.url, read_only=True)
                try:
                    check_schema(engine)
                except BaseException:
                    engine.dispose()
                    raise
                self._read_only = engine
                self._find_actor(engine)
        return self._read_only

    def with_actor(self, actor: str | Actor) -> Context:
        """The same database and clock, another actor (checked when first used)."""
        other = Context(
            self.database, engine=self.engine, clock=self.clock, actor=actor,
            secretariat_scope=self._scope,
        )  # fmt: skip
        other._own_engine = False
        return other

    def close(self) -> None:
        """Close what this context opened (a caller's engine is the caller's)."""
        if self._read_only is not None and self._read_only is not self._engine:
            self._read_only.dispose()
        self._read_only = None
        if self._own_engine and self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- transactions --------------------------------------------------------------
    @contextmanager
    def reading(self, session: Session | None = None) -> Iterator[Session]:
        """A read session, or ``session`` itself when one is given."""
        if session is not None:
            yield session
            return
        from mspflow.store import read_session

        with read_session(self.engine) as s:
            yield s

    @contextmanager
    def writing(self, ref: str = "", session: Session | None = None) -> Iterator[Session]:
        """One write transaction (or ``session``, left to its owner to commit), in which
        a deadlock or serialisation failure the database reports becomes
        ConcurrentChange: nothing was written and a retry may go through."""
        if session is not None:
            yield session
            return
        from mspflow.store import write_session
        from mspflow.store.lookup import concurrency_errors

        with concurrency_errors(ref), write_session(self.engine) as s:
            yield s

    def now(self) -> Any:
        return self.clock.now()
