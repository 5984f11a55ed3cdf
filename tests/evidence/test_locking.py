"""Evidence is checked and written under the partnership's row lock (PostgreSQL).

A record decided while another transaction is writing to the same partnership
waits for it, then sees what it wrote: a duplicate is found by the check
(exit 7, "already linked"), not by the database's unique index on the way out.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from mspflow.errors import InvalidInput
from mspflow.services import Mspflow
from mspflow.store import models as m
from mspflow.store.lookup import find


def _waiting_for_a_lock(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
        )


def test_a_record_waits_for_the_lock_and_then_sees_the_other_write(
    engine: Engine, service: Mspflow, water: str
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises whole transactions; see test_import")
    holder = Session(engine)
    holder.begin()
    p = find(holder, water, for_update=True)
    holder.add(
        m.SdgTarget(
            partnership_id=p.id, code="6.1", recorded_by="ana", recorded_at=service.clock.now()
        )
    )
    holder.flush()
    outcome: list[Any] = []

    def second() -> None:
        try:
            outcome.append(
                service.evidence.record(partnership=water, kind="sdg", values={"code": "6.1"})
            )
        except Exception as exc:  # what it raised is the result under test
            outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 30
    while _waiting_for_a_lock(engine) == 0:  # until the second writer waits on a lock
        assert thread.is_alive(), f"did not wait for the lock: {outcome}"
        assert time.monotonic() < deadline
        thread.join(0.01)
    holder.commit()
    holder.close()
    thread.join(30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], InvalidInput), outcome
    assert str(outcome[0]) == "sdg: SDG target 6.1 is already linked to water"
