"""A sweeper process for the fault-injection harness (:mod:`tests.support.faults`).

It sweeps once at the instant it is given, pausing before every statement and
commit of its write transactions so the test can kill it there with SIGKILL.
"""

from __future__ import annotations

import json
import traceback
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["sweep_once"]


def sweep_once(config: dict[str, Any], conn: Connection) -> None:
    from mspflow.clock import ManualClock, parse_instant
    from mspflow.scheduler.notify import EmailChannel, SmtpConfig, TerminalChannel
    from mspflow.services.sweep import Sweeper
    from mspflow.store import make_engine
    from tests.support.worker import Channel, pause_points

    channel = Channel(conn)
    try:
        pause_points(channel)
        channel.send("ready")
        if channel.wait() != "go":
            channel.send("S " + json.dumps({"swept": 0, "unexpected": []}))
            return
        channel.pausing = True
        smtp = SmtpConfig(host="127.0.0.1", port=config["smtp_port"], security="none", timeout=10)
        engine = make_engine(config["url"])
        sweeper = Sweeper(
            engine,
            ManualClock(parse_instant(config["now"])),
            channels=[TerminalChannel(lambda _line: None), EmailChannel(smtp)],
            name=f"worker-{config['seed']}",
            lease=timedelta(seconds=config.get("lease_seconds", 300)),
        )
        report = sweeper.sweep()
        channel.pause("operation done")
        channel.pausing = False
        engine.dispose()
        channel.send(
            "S "
            + json.dumps(
                {"swept": 1, "sent": report.sent, "failed": report.failed, "unexpected": []}
            )
        )
    except BaseException:
        channel.pausing = False
        channel.send("E " + traceback.format_exc())
        raise
