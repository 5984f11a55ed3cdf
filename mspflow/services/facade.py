"""The facade: one database, one clock, one acting user, and every service on them."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from mspflow.auth import Actor
from mspflow.clock import Clock
from mspflow.services.context import Context

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mspflow.services.audit import Audit
    from mspflow.services.channels import Channels
    from mspflow.services.evidence import Evidence
    from mspflow.services.exports import Exports
    from mspflow.services.members import Members
    from mspflow.services.partnerships import Partnerships
    from mspflow.services.scheduler import Scheduler
    from mspflow.services.schedules import Schedules
    from mspflow.services.users import Users
    from mspflow.services.versions import Versions

__all__ = ["Mspflow"]


class Mspflow:
    """mspflow's operations on one database, as one user.

    ``database`` is a URL or a SQLite file path (default: ``MSPFLOW_DATABASE_URL``,
    else a file in the user's data folder); ``engine`` an engine the caller made
    (and disposes of). ``actor`` is a user name, checked against the database
    when it is first opened (or ``MSPFLOW_ACTOR``), or an :class:`Actor` trusted
    as given. ``clock`` gives "now" to everything (tests and the demo move it).

    >>> app = Mspflow("msp.db", actor="amara")          # doctest: +SKIP
    >>> app.partnerships.advance(partnership="water")   # doctest: +SKIP
    """

    def __init__(
        self,
        database: str | None = None,
        *,
        engine: Engine | None = None,
        clock: Clock | None = None,
        actor: str | Actor | None = None,
        secretariat_scope: str | None = None,
        context: Context | None = None,
    ) -> None:
        self.ctx = context or Context(
            database, engine=engine, clock=clock, actor=actor,
            secretariat_scope=secretariat_scope,
        )  # fmt: skip

    @cached_property
    def partnerships(self) -> Partnerships:
        from mspflow.services.partnerships import Partnerships

        return Partnerships(self.ctx)

    @cached_property
    def evidence(self) -> Evidence:
        from mspflow.services.evidence import Evidence

        return Evidence(self.ctx, self.partnerships)

    @cached_property
    def schedules(self) -> Schedules:
        from mspflow.services.schedules import Schedules

        return Schedules(self.ctx, self.partnerships, self.evidence)

    @cached_property
    def members(self) -> Members:
        from mspflow.services.members import Members

        return Members(self.ctx, self.partnerships)

    @cached_property
    def users(self) -> Users:
        from mspflow.services.users import Users

        return Users(self.ctx)

    @cached_property
    def audit(self) -> Audit:
        from mspflow.services.audit import Audit

        return Audit(self.ctx)

    @cached_property
    def versions(self) -> Versions:
        from mspflow.services.versions import Versions

        return Versions(self.ctx, self.partnerships)

    @cached_property
    def channels(self) -> Channels:
        from mspflow.services.channels import Channels

        return Channels(self.ctx)

    @cached_property
    def exports(self) -> Exports:
        from mspflow.services.exports import Exports

        return Exports(self.ctx)

    @cached_property
    def scheduler(self) -> Scheduler:
        from mspflow.services.scheduler import Scheduler

        return Scheduler(self.ctx)

    @property
    def actor(self) -> Actor:
        """The acting user (the database is opened to find them)."""
        return self.ctx.actor

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    def as_user(self, actor: str | Actor) -> Mspflow:
        """The same database and clock, acting as someone else."""
        return Mspflow(context=self.ctx.with_actor(actor))

    def close(self) -> None:
        self.ctx.close()

    def __enter__(self) -> Mspflow:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()
