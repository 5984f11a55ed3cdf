"""When each schedule next has something to fire, so a sweep reads only those due.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedule") as batch:
        batch.add_column(sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(batch.f("ix_schedule_next_due_at"), ["next_due_at"])
    op.execute("UPDATE schema_version SET version = 4 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("schedule") as batch:
        batch.drop_index(batch.f("ix_schedule_next_due_at"))
        batch.drop_column("next_due_at")
    op.execute("UPDATE schema_version SET version = 3 WHERE id = 1")
