"""The scheduler: one sweep by hand (for system cron), or the daemon that sweeps at an
interval. Both need the secretariat role: a sweep writes, sends mail and moves
partnerships (as the ``scheduler``).

The channels are composed here: the terminal (what the caller prints), and
email when SMTP is configured (:func:`mspflow.scheduler.notify.load_smtp_config`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mspflow import inputs
from mspflow.clock import ManualClock
from mspflow.errors import DeliveryError, PartialSweep

if TYPE_CHECKING:
    from mspflow.scheduler.notify import Channel
    from mspflow.services.context import Context
    from mspflow.services.sweep import Sweeper, SweepReport

__all__ = ["Scheduler", "chat_urls", "check_report"]

Say = Callable[[str], None]


def check_report(report: SweepReport) -> None:
    """PartialSweep when a schedule or notification failed for good (each recorded and
    escalated, everything else handled); DeliveryError when notifications are kept
    for a retry. When both happen, PartialSweep."""
    if report.failures:
        retry = f"; {report.failed} notification(s) kept for retry" if report.failed else ""
        raise PartialSweep(
            f"partial sweep: {report.schedule_failures} schedule(s) and "
            f"{report.undeliverable} notification(s) failed and were recorded{retry}; "
            f"the rest was handled (first: {report.failures[0]})",
            hint="the fired triggers (purpose schedule-failed) and the outbox show each",
        )
    if report.failed:
        raise DeliveryError(
            f"{report.failed} notification(s) not delivered; kept in the outbox for retry "
            f"(first: {report.retry[0]})",
            hint="the outbox shows them",
        )


class Scheduler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def channels(self, say: Say | None = None) -> list[Channel]:
        """The terminal (``say``), email when SMTP is configured, and the chat
        destinations configured in the database."""
        from mspflow.scheduler.notify import (
            ChatChannel,
            EmailChannel,
            TerminalChannel,
            load_smtp_config,
        )

        channels: list[Channel] = [TerminalChannel(say)]
        config = load_smtp_config()
        if config is not None:
            channels.append(EmailChannel(config))
        channels.append(ChatChannel(chat_urls(self.ctx.engine)))
        return channels

    def sweeper(
        self,
        *,
        action: str,
        name: str | None = None,
        channels: Sequence[Channel] | None = None,
        say: Say | None = None,
        now: datetime | None = None,
    ) -> Sweeper:
        """A sweeper on this database for a secretariat member (``now``: sweep as of it)."""
        from mspflow.services.sweep import Sweeper

        self.ctx.policy.require_role("secretariat", action=action)
        clock = ManualClock(now) if now is not None else self.ctx.clock
        return Sweeper(
            self.ctx.engine, clock, channels=list(channels or self.channels(say)), name=name
        )

    def sweep(self, *, now: datetime | None = None, say: Say | None = None) -> SweepReport:
        """One sweep: fire what fell due, deliver the outbox. Use :func:`check_report`
        to turn what failed into an error."""
        return self.sweeper(action="run the reminder sweep", say=say, now=now).sweep()

    def deliver(self, *, say: Say | None = None) -> SweepReport:
        """Deliver what waits in the outbox (and retry what is due for it), firing nothing."""
        from mspflow.services.sweep import SweepReport

        sweeper = self.sweeper(action="deliver notifications", say=say)
        report = SweepReport(self.ctx.now())
        sweeper.deliver(report)
        return report

    def run(
        self,
        *,
        interval: int = 60,
        name: str | None = None,
        max_sweeps: int | None = None,
        say: Say,
        warn: Say,
        note: Say,
    ) -> int:
        """Sweep every ``interval`` seconds until SIGINT or SIGTERM (or ``max_sweeps``);
        returns the number of sweeps. ``say`` gets each sweep's summary, ``warn`` each
        problem (a sweep that cannot reach the database, and the daemon goes on; a
        failure a sweep recorded), ``note`` the daemon's start and stop."""
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        from mspflow.services.sweep import error_line

        interval = inputs.whole(interval, field="interval", low=1, high=86_400)
        if max_sweeps is not None:
            max_sweeps = inputs.whole(max_sweeps, field="max_sweeps", low=1)
        sweeper = self.sweeper(action="run the scheduler", name=name, say=say)
        daemon = BlockingScheduler(timezone="UTC")
        done = {"sweeps": 0, "down": 0}

        def sweep() -> None:
            try:
                report = sweeper.sweep()
            except Exception as exc:  # the database itself: keep the daemon alive, retry
                done["down"] += 1
                warn(
                    f"sweep {done['sweeps'] + 1} could not run ({done['down']} in a row): "
                    f"{error_line(exc)}"
                )
            else:
                done["down"] = 0
                say(report.summary())
                for line in report.failures:
                    warn(f"failed: {line}")
            done["sweeps"] += 1
            if max_sweeps is not None and done["sweeps"] >= max_sweeps:
                daemon.shutdown(wait=False)

        def stop(signum: int, _frame: Any) -> None:
            note(f"stopping on signal {signum}")
            daemon.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        daemon.add_job(
            sweep,
            IntervalTrigger(seconds=interval, timezone="UTC"),
            next_run_time=datetime.now(timezone.utc),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        note(f"scheduler {sweeper.name}: sweeping every {interval} s")
        daemon.start()
        return done["sweeps"]


def chat_urls(engine: Any) -> Callable[[Sequence[str]], dict[str, str]]:
    """The URLs of active chat destinations by id (as notifications' recipients name
    them), read in one query when a batch is sent: one removed meanwhile is absent."""
    from sqlmodel import col, select

    from mspflow.store import models as m
    from mspflow.store import read_session

    def urls(recipients: Sequence[str]) -> dict[str, str]:
        ids = [int(r) for r in recipients if r.isdigit() and int(r) <= inputs.INT_MAX]
        if not ids:
            return {}
        with read_session(engine) as s:
            rows = s.exec(
                select(m.ChatChannel.id, m.ChatChannel.url).where(
                    col(m.ChatChannel.id).in_(ids), col(m.ChatChannel.active).is_(True)
                )
            )
            return {str(cid): url for cid, url in rows}

    return urls
