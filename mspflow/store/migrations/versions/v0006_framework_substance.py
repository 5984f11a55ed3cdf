"""What the guideline asks partnerships to track: rewards and risks per partner
(3.2), action plans (7.2), milestones (8.1), SDG indicators and their values
(9.1), the currency of a resource and a decision not to scale up (11.1).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def _evidence(name: str, *columns: sa.Column[Any], unique: tuple[str, ...] = ()) -> None:
    """An evidence table: its own columns after those every evidence row has."""
    extra = [sa.UniqueConstraint("partnership_id", *unique)] if unique else []
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partnership_id", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(["partnership_id"], ["partnership.id"]),
        sa.PrimaryKeyConstraint("id"),
        *extra,
    )
    op.create_index(f"ix_{name}_partnership_id", name, ["partnership_id"])


def upgrade() -> None:
    _evidence(
        "risk_reward",
        sa.Column("partner_id", sa.Integer(), sa.ForeignKey("partner.id"), nullable=False),
        sa.Column("rewards", sa.String(), nullable=False),
        sa.Column("risks", sa.String(), nullable=False),
    )
    op.create_index("ix_risk_reward_partner_id", "risk_reward", ["partner_id"])
    _evidence(
        "action_plan",
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("made_on", sa.Date(), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
    )
    _evidence(
        "milestone",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("component_id", sa.Integer(), sa.ForeignKey("component.id"), nullable=True),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("delay", sa.String(), nullable=True),
        unique=("name",),
    )
    op.create_index("ix_milestone_due_on", "milestone", ["due_on"])
    _evidence(
        "sdg_indicator",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("baseline_on", sa.Date(), nullable=True),
        sa.Column("target_on", sa.Date(), nullable=True),
        unique=("code",),
    )
    _evidence(
        "indicator_value",
        sa.Column("indicator_id", sa.Integer(), sa.ForeignKey("sdg_indicator.id"), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(), nullable=True),
    )
    op.create_index("ix_indicator_value_indicator_id", "indicator_value", ["indicator_id"])
    with op.batch_alter_table("resource") as batch:
        batch.add_column(sa.Column("currency", sa.String(), nullable=True))
    with op.batch_alter_table("scale_up_decision") as batch:
        batch.add_column(
            sa.Column("declined", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE schema_version SET version = 6 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("scale_up_decision") as batch:
        batch.drop_column("declined")
    with op.batch_alter_table("resource") as batch:
        batch.drop_column("currency")
    for name in ("indicator_value", "sdg_indicator", "milestone", "action_plan", "risk_reward"):
        op.drop_table(name)
    op.execute("UPDATE schema_version SET version = 5 WHERE id = 1")
