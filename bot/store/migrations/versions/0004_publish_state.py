"""Publishing as a retriable step of the incident's state (issue 13, finding 2).

incidents: `publish_state` (claimed → posted → updated → final; existing rows are final),
`publish_attempts`, `publish_retry_at` (a live worker's lease or a retry's back-off) and
`publish_error` (the last attempt's failure), so the clock finishes an incident stuck short of
its final state and a redelivery resumes one that was claimed but never posted.

Revision ID: 0004_publish_state
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_publish_state"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("publish_state", sa.String(length=16), server_default=sa.text("'final'"),
                                   nullable=False))
        batch.add_column(sa.Column("publish_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("publish_retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("publish_error", sa.Text(), nullable=True))
    op.create_index("ix_incidents_publish_state", "incidents", ["publish_state"])


def downgrade() -> None:
    op.drop_index("ix_incidents_publish_state", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("publish_error")
        batch.drop_column("publish_retry_at")
        batch.drop_column("publish_attempts")
        batch.drop_column("publish_state")
