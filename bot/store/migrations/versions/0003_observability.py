"""Observability and control: what the reports and the canary watch need.

- briefs: what triggered each version, who asked, how long it took (`trigger`, `requested_by`,
  `latency_ms`); incidents: refreshes a person asked for (`human_refreshes`); approvals: whether
  the proposal was edited before approval (`edited`); model_calls: the canary side (`arm`).
- control_events: the bot's decisions about itself (a canary switched off), an audit table.
- canary_states: canary candidates switched off, shared by every replica.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("briefs") as batch:
        batch.add_column(sa.Column("trigger", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("requested_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("latency_ms", sa.Float(), nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("human_refreshes", sa.Integer(), server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("edited", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("arm", sa.String(length=16), nullable=True))
    op.create_table(
        "control_events",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_control_events"),
    )
    op.create_index("ix_control_events_at", "control_events", ["at"])
    op.create_table(
        "canary_states",
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("route", "model", name="pk_canary_states"),
    )


def downgrade() -> None:
    op.drop_table("canary_states")
    op.drop_table("control_events")
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("arm")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("edited")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("human_refreshes")
    with op.batch_alter_table("briefs") as batch:
        batch.drop_column("latency_ms")
        batch.drop_column("requested_by")
        batch.drop_column("trigger")
