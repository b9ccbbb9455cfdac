"""The citation check of every drafted brief, as audit rows (`bot.core.audit.BriefCheckRecord`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "brief_checks",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("brief_key", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("drafter", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("problems", _json(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_brief_checks"),
    )
    op.create_index("ix_brief_checks_at", "brief_checks", ["at"])
    op.create_index("ix_brief_checks_brief_key", "brief_checks", ["brief_key"])


def downgrade() -> None:
    op.drop_table("brief_checks")
