"""Alert storms: the open window of each group, and the incidents grouped into a leader's thread.

Revision ID: 0006_storm_groups
Revises: 0005_status_order
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_storm_groups"
down_revision: str | None = "0005_status_order"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "storm_groups",
        sa.Column("group_key", sa.String(length=300), nullable=False),
        sa.Column("leader_key", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_key", name="pk_storm_groups"),
    )
    op.create_table(
        "storm_members",
        sa.Column("incident_key", sa.String(length=200), nullable=False),
        sa.Column("leader_key", sa.String(length=200), nullable=False),
        sa.Column("group_key", sa.String(length=300), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_key", name="pk_storm_members"),
    )
    op.create_index("ix_storm_members_leader_key", "storm_members", ["leader_key"])


def downgrade() -> None:
    op.drop_index("ix_storm_members_leader_key", table_name="storm_members")
    op.drop_table("storm_members")
    op.drop_table("storm_groups")
