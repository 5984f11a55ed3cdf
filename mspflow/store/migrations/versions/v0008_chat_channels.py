"""Chat and webhook channels for notifications (Apprise URLs), per partnership or
for the whole portfolio.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "chat_channel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partnership_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("added_by", sa.String(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partnership_id"], ["partnership.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("label"),
    )
    op.create_index("ix_chat_channel_partnership_id", "chat_channel", ["partnership_id"])
    op.execute("UPDATE schema_version SET version = 8 WHERE id = 1")


def downgrade() -> None:
    op.drop_index("ix_chat_channel_partnership_id", table_name="chat_channel")
    op.drop_table("chat_channel")
    op.execute("UPDATE schema_version SET version = 7 WHERE id = 1")
