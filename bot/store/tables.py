"""The schema, as typed SQLAlchemy 2 mappings: the single source of truth.

The Alembic migrations in ``bot/store/migrations/versions`` are written out by hand from this
module, and ``tests/test_store.py`` compares the migrated database against this metadata so the
two cannot drift. Change a table here, then add a migration that makes the test pass again.

Every timestamp is timezone-aware UTC (`UTCDateTime`). Money is stored as integer micro-dollars
so concurrent increments never accumulate float error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.store.types import UTCDateTime, json_type

# Deterministic constraint names, so a later migration can drop or alter them by name on
# every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Approval states in which an idempotency key is "taken": at most one such row per key.
# Rejected, expired and failed proposals may be proposed again.
LIVE_APPROVAL_STATES = ("proposed", "approved", "executing", "done")
_LIVE_PREDICATE = text("state IN ('proposed', 'approved', 'executing', 'done')")

# 64-bit ids on PostgreSQL; SQLite only auto-increments a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: json_type(),
        list[str]: json_type(),
    }


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    service: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), index=True)
    # When `status` happened (PagerDuty's occurred_at): an older change never overwrites it.
    status_at: Mapped[datetime | None]
    slack_channel: Mapped[str | None] = mapped_column(String(64), index=True)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(32))  # when the brief lives in a thread
    alert: Mapped[dict[str, Any] | None]  # the `bot.core.models.Alert` that started it (for refresh)
    # Refreshes a person asked for (a refresh that changed nothing leaves no brief version).
    human_refreshes: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Publishing as a retriable step (`bot.slack.lifecycle`): claimed → posted → updated → final.
    # Rows from before the column existed were published the old way: they count as final.
    publish_state: Mapped[str] = mapped_column(String(16), server_default=text("'final'"), index=True)
    publish_attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Nobody else may take the step up before this: a live worker's lease, or a retry's back-off.
    publish_retry_at: Mapped[datetime | None]
    publish_error: Mapped[str | None] = mapped_column(Text)  # the last attempt's failure, redacted
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BriefRow(Base):
    __tablename__ = "briefs"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("incidents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any]]  # a `bot.core.models.BriefResult` as JSON
    drafter: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    trigger: Mapped[str | None] = mapped_column(String(32))  # pagerduty | slack_mention | refresh | scheduled ...
    requested_by: Mapped[str | None] = mapped_column(String(100))
    latency_ms: Mapped[float | None] = mapped_column(Float)  # from the start of the work to the brief stored
    created_at: Mapped[datetime]


class EvidenceRow(Base):
    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("brief_id", "evidence_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brief_id: Mapped[int] = mapped_column(BigId, ForeignKey("briefs.id", ondelete="CASCADE"))
    evidence_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]]  # the whole `bot.core.models.Evidence` as JSON


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        Index(
            "uq_approvals_live_idempotency_key",
            "idempotency_key",
            unique=True,
            sqlite_where=_LIVE_PREDICATE,
            postgresql_where=_LIVE_PREDICATE,
        ),
        Index("ix_approvals_state_updated_at", "state", "updated_at"),
        CheckConstraint(
            "state IN ('proposed', 'approved', 'executing', 'done', 'failed', 'rejected', 'expired')",
            name="state",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    incident_key: Mapped[str] = mapped_column(String(200), index=True)
    brief_version: Mapped[int] = mapped_column(Integer)
    tool: Mapped[str] = mapped_column(String(100))
    proposal: Mapped[dict[str, Any]]
    requested_by: Mapped[str | None] = mapped_column(String(100))
    approvers: Mapped[list[str]]
    idempotency_key: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    jira_key: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # Bumped on every change: optimistic concurrency for read-modify-write transitions.
    revision: Mapped[int] = mapped_column(Integer)
    # The proposal was edited in the modal before it was approved (a human override).
    edited: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    approved_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ToolCallRow(Base):
    __tablename__ = "tool_calls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brief_key: Mapped[str | None] = mapped_column(String(200), index=True)
    tool: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str | None] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(16))
    decision_reason: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    evidence_count: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    args: Mapped[dict[str, Any]]
    at: Mapped[datetime] = mapped_column(index=True)


class ModelCallRow(Base):
    __tablename__ = "model_calls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brief_key: Mapped[str | None] = mapped_column(String(200), index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    task: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    cache_hit: Mapped[bool]
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    arm: Mapped[str | None] = mapped_column(String(16))  # baseline | canary, on a route with a canary
    at: Mapped[datetime] = mapped_column(index=True)


class BriefCheckRow(Base):
    __tablename__ = "brief_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brief_key: Mapped[str | None] = mapped_column(String(200), index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    check: Mapped[str] = mapped_column(String(32))
    drafter: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    coverage: Mapped[float] = mapped_column(Float)
    problems: Mapped[list[str]]
    at: Mapped[datetime] = mapped_column(index=True)


class ControlEventRow(Base):
    """The bot's decisions about itself (`bot.core.audit.ControlRecord`): a canary switched off."""

    __tablename__ = "control_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    actor: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    at: Mapped[datetime] = mapped_column(index=True)


class CanaryStateRow(Base):
    """A canary candidate switched off, per route and model: every replica reads it before its
    next canary brief. A new candidate in config has no row, so it starts live."""

    __tablename__ = "canary_states"

    route: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]


class SpendRow(Base):
    """One running total: a user's day (period ``YYYY-MM-DD``) or a workspace's month
    (``YYYY-MM``). Incremented with a single upsert, never read-modify-write."""

    __tablename__ = "spend"
    __table_args__ = (CheckConstraint("scope IN ('user', 'workspace')", name="scope"),)

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    usd_micros: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class FeedbackRow(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("brief_id", "user_id"),
        CheckConstraint("vote IN ('up', 'down')", name="vote"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brief_id: Mapped[int] = mapped_column(BigId, ForeignKey("briefs.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(100))
    vote: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDeliveryRow(Base):
    """Seen webhook deliveries (PagerDuty's signed ``event.id``, Slack ``event_id``): the primary key
    is the dedupe, so two replicas receiving the same retry cannot both process it."""

    __tablename__ = "webhook_deliveries"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


class CacheRow(Base):
    """A generic response cache (the gateway keys it on model + prompt version + evidence)."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(json_type())
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class StormGroupRow(Base):
    """An alert storm's open window: incidents with this group key (the channel and service)
    triggered within the window of `opened_at` reply in the leader's thread instead of getting
    a brief of their own (`bot.store.replicas.storms`)."""

    __tablename__ = "storm_groups"

    group_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    leader_key: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime]


class StormMemberRow(Base):
    """An incident grouped into another's thread: its status changes reply there too."""

    __tablename__ = "storm_members"

    incident_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    leader_key: Mapped[str] = mapped_column(String(200), index=True)
    group_key: Mapped[str] = mapped_column(String(300))
    joined_at: Mapped[datetime]
