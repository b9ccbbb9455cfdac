"""PagerDuty status changes applied in the order they happened, not the order they arrived.

- incidents.status_at: when the status in `status` happened (PagerDuty's `occurred_at`); a
  status change that happened earlier than it (an "acknowledged" delivered after "resolved")
  is recorded as a delivery but does not set the status back.

Revision ID: 0005_status_order
Revises: 0004_publish_state
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_status_order"
down_revision: str | None = "0004_publish_state"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("status_at")
