"""Members of a partnership: partner contacts and assigned secretariat members.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partnership_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("added_by", sa.String(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partnership_id"], ["partnership.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partnership_id", "user_id"),
    )
    op.create_index("ix_membership_partnership_id", "membership", ["partnership_id"])
    op.create_index("ix_membership_user_id", "membership", ["user_id"])
    op.execute("UPDATE schema_version SET version = 5 WHERE id = 1")


def downgrade() -> None:
    op.drop_index("ix_membership_user_id", table_name="membership")
    op.drop_index("ix_membership_partnership_id", table_name="membership")
    op.drop_table("membership")
    op.execute("UPDATE schema_version SET version = 4 WHERE id = 1")
