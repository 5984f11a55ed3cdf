"""A partner's role, as IATI's participating organisations name it (funding,
accountable, extending, implementing).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: on SQLite a batch would copy the table, which rows of other
    # tables point at.
    op.add_column("partner", sa.Column("role", sa.String(), nullable=True))
    op.execute("UPDATE schema_version SET version = 7 WHERE id = 1")


def downgrade() -> None:
    op.drop_column("partner", "role")  # SQLite 3.35+
    op.execute("UPDATE schema_version SET version = 6 WHERE id = 1")
