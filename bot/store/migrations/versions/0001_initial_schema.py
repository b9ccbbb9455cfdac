"""Initial schema: incidents, brief versions, evidence, approvals, audit, spend, feedback,
webhook dedupe and the response cache.

Written out by hand from `bot.store.tables`; `tests/test_store.py` proves no drift between the
two. Types are spelled with plain SQLAlchemy types (never the app's TypeDecorators) so this
file keeps working however the app code changes later.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

LIVE_STATES = sa.text("state IN ('proposed', 'approved', 'executing', 'done')")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("slack_channel", sa.String(length=64), nullable=True),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.Column("slack_thread_ts", sa.String(length=32), nullable=True),
        sa.Column("alert", _json(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("key", name="uq_incidents_key"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_slack_channel", "incidents", ["slack_channel"])

    op.create_table(
        "briefs",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("incident_id", _id(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("result", _json(), nullable=False),
        sa.Column("drafter", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("prompt_version", sa.String(length=64), nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_briefs_incident_id_incidents",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_briefs"),
        sa.UniqueConstraint("incident_id", "version", name="uq_briefs_incident_id_version"),
    )

    op.create_table(
        "evidence",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("brief_id", _id(), nullable=False),
        sa.Column("evidence_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("data", _json(), nullable=False),
        sa.ForeignKeyConstraint(["brief_id"], ["briefs.id"], name="fk_evidence_brief_id_briefs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_evidence"),
        sa.UniqueConstraint("brief_id", "evidence_id", name="uq_evidence_brief_id_evidence_id"),
    )

    op.create_table(
        "feedback",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("brief_id", _id(), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("vote", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("vote IN ('up', 'down')", name="ck_feedback_vote"),
        sa.ForeignKeyConstraint(["brief_id"], ["briefs.id"], name="fk_feedback_brief_id_briefs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("brief_id", "user_id", name="uq_feedback_brief_id_user_id"),
    )

    op.create_table(
        "approvals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("incident_key", sa.String(length=200), nullable=False),
        sa.Column("brief_version", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=100), nullable=False),
        sa.Column("proposal", _json(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("approvers", _json(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("jira_key", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("approved_at", nullable=True),
        _ts("claimed_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.CheckConstraint(
            "state IN ('proposed', 'approved', 'executing', 'done', 'failed', 'rejected', 'expired')",
            name="ck_approvals_state",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
    )
    op.create_index("ix_approvals_incident_key", "approvals", ["incident_key"])
    op.create_index("ix_approvals_state_updated_at", "approvals", ["state", "updated_at"])
    op.create_index("uq_approvals_live_idempotency_key", "approvals", ["idempotency_key"], unique=True,
                    sqlite_where=LIVE_STATES, postgresql_where=LIVE_STATES)

    op.create_table(
        "tool_calls",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("brief_key", sa.String(length=200), nullable=True),
        sa.Column("tool", sa.String(length=100), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evidence_count", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("args", _json(), nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name="pk_tool_calls"),
    )
    op.create_index("ix_tool_calls_at", "tool_calls", ["at"])
    op.create_index("ix_tool_calls_brief_key", "tool_calls", ["brief_key"])

    op.create_table(
        "model_calls",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("brief_key", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("prompt_version", sa.String(length=64), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name="pk_model_calls"),
    )
    op.create_index("ix_model_calls_at", "model_calls", ["at"])
    op.create_index("ix_model_calls_brief_key", "model_calls", ["brief_key"])

    op.create_table(
        "spend",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("usd_micros", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        _ts("updated_at"),
        sa.CheckConstraint("scope IN ('user', 'workspace')", name="ck_spend_scope"),
        sa.PrimaryKeyConstraint("scope", "subject", "period", name="pk_spend"),
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("source", "delivery_id", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_received_at", "webhook_deliveries", ["received_at"])

    op.create_table(
        "response_cache",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", _json(), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("key", name="pk_response_cache"),
    )
    op.create_index("ix_response_cache_expires_at", "response_cache", ["expires_at"])


def downgrade() -> None:
    for table in ("response_cache", "webhook_deliveries", "spend", "model_calls", "tool_calls",
                  "approvals", "feedback", "evidence", "briefs", "incidents"):
        # Dropping a table drops its indexes with it on both backends.
        op.drop_table(table)
