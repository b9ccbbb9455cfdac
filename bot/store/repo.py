"""The store's operations: incidents, brief versions, webhook dedupe, spend, feedback, the
response cache, retention, and the audit sink.

Every write that can race (two replicas, a retried webhook, concurrent model calls) is one
statement the database arbitrates: an upsert, an ``ON CONFLICT DO NOTHING`` or a unique key
with a retry. Callers pass already-redacted text; the raw payload columns (an incident's title and
alert, a webhook delivery id) are masked here again, because they are copied from outside input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.audit import utcnow
from bot.core.errors import IncidentBriefError
from bot.core.models import Alert, BriefResult, Evidence
from bot.core.redaction import redact, redact_obj
from bot.store.audit import AuditRows, rowcount
from bot.store.publishing import PublishRows
from bot.store.tables import (
    BriefRow,
    CacheRow,
    EvidenceRow,
    FeedbackRow,
    IncidentRow,
    SpendRow,
    WebhookDeliveryRow,
)
from bot.store.upsert import insert_for

Sessions = async_sessionmaker[AsyncSession]
Clock = Callable[[], datetime]
Vote = Literal["up", "down"]

_MICROS = 1_000_000
_VERSION_RETRIES = 8


class UnknownRecord(IncidentBriefError, LookupError):
    """The incident or brief version a call refers to is not in the store."""


class IncidentRecord(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    key: str
    service: str
    title: str
    status: str
    status_at: datetime | None = None  # when the status happened (PagerDuty's occurred_at), when known
    slack_channel: str | None
    slack_ts: str | None
    slack_thread_ts: str | None = None
    alert_json: dict[str, Any] | None = Field(default=None, validation_alias="alert")
    publish_state: str = "final"  # claimed → posted → updated → final (`bot.store.publishing`)
    publish_attempts: int = 0
    publish_retry_at: datetime | None = None
    publish_error: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def channel(self) -> str | None:
        return self.slack_channel

    @property
    def message_ts(self) -> str | None:
        return self.slack_ts

    @property
    def alert(self) -> Alert | None:
        return Alert.model_validate(self.alert_json) if self.alert_json else None


class BriefRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    incident_key: str
    version: int
    result: BriefResult
    drafter: str
    model: str | None
    prompt_version: str | None
    created_at: datetime

    @property
    def evidence(self) -> list[Evidence]:
        """The evidence the brief was built from (its citations resolve against these ids)."""
        return self.result.evidence


class FeedbackRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    incident_key: str
    version: int
    user: str
    vote: Vote
    reason: str | None
    updated_at: datetime


@dataclass(frozen=True)
class SpendTotal:
    usd: float
    tokens: int


@dataclass(frozen=True)
class SpendTotals:
    """Running totals right after an increment: what a hard stop compares with its limits."""

    user_day: SpendTotal | None
    workspace_month: SpendTotal


def user_period(day: date) -> str:
    return day.strftime("%Y-%m-%d")


def workspace_period(month: date) -> str:
    return month.strftime("%Y-%m")


class Store(AuditRows, PublishRows):
    """All store operations over one session factory; safe to share across tasks. The audit
    rows' operations are `bot.store.audit.AuditRows`, the publish step's
    `bot.store.publishing.PublishRows`."""

    def __init__(self, sessions: Sessions, *, clock: Clock = utcnow) -> None:
        self.sessions = sessions
        self.clock = clock

    # --- incidents -------------------------------------------------------------------------

    async def save_incident(self, *, key: str, service: str, title: str, status: str,
                            slack_channel: str | None = None, slack_ts: str | None = None) -> IncidentRecord:
        """Create or update by key. Slack fields given as None keep what is stored."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            stmt = await insert_for(session, IncidentRow)
            stmt = stmt.values(key=key, service=service, title=redact(title), status=status,
                               slack_channel=slack_channel, slack_ts=slack_ts,
                               created_at=now, updated_at=now)
            upsert = stmt.on_conflict_do_update(index_elements=[IncidentRow.key], set_={
                "service": stmt.excluded.service,
                "title": stmt.excluded.title,
                "status": stmt.excluded.status,
                "slack_channel": func.coalesce(stmt.excluded.slack_channel, IncidentRow.slack_channel),
                "slack_ts": func.coalesce(stmt.excluded.slack_ts, IncidentRow.slack_ts),
                "updated_at": stmt.excluded.updated_at,
            }).returning(IncidentRow)
            row = (await session.execute(upsert)).scalar_one()
            return IncidentRecord.model_validate(row)

    async def claim_incident(self, *, key: str, service: str, title: str, channel: str | None,
                             alert: Alert | None = None, status: str = "triggered", thread_ts: str | None = None,
                             lease_until: datetime | None = None) -> bool:
        """Create the incident unless it exists. True only for the first caller: the dedupe that
        keeps PagerDuty retries, duplicate events and several replicas from posting twice. The
        claim is the publish step's first attempt (state ``claimed``), leased to the caller
        until `lease_until`; past it, the clock may take the step over."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            stmt = await insert_for(session, IncidentRow)
            # The alert is a raw payload (a PagerDuty title, a person's message): masked whole
            # before it is stored, like the title beside it (issue 13, finding 3).
            stmt = stmt.values(key=key, service=service, title=redact(title), status=status, slack_channel=channel,
                               slack_thread_ts=thread_ts,
                               alert=redact_obj(alert.model_dump(mode="json")) if alert else None,
                               publish_state="claimed", publish_attempts=1, publish_retry_at=lease_until,
                               created_at=now, updated_at=now)
            inserted = await session.execute(
                stmt.on_conflict_do_nothing(index_elements=[IncidentRow.key]).returning(IncidentRow.id))
            return inserted.scalar_one_or_none() is not None

    async def incident_for_thread(self, channel: str, thread_ts: str | None) -> IncidentRecord | None:
        """The incident whose brief is this thread's parent (or was posted inside this thread)."""
        if not thread_ts:
            return None
        stmt = select(IncidentRow).where(
            IncidentRow.slack_channel == channel,
            or_(IncidentRow.slack_ts == thread_ts, IncidentRow.slack_thread_ts == thread_ts),
        ).order_by(IncidentRow.created_at.desc()).limit(1)
        async with self.sessions() as session:
            row = await session.scalar(stmt)
            return IncidentRecord.model_validate(row) if row else None

    async def latest_incident_in_channel(self, channel: str) -> IncidentRecord | None:
        stmt = select(IncidentRow).where(IncidentRow.slack_channel == channel).order_by(
            IncidentRow.created_at.desc(), IncidentRow.id.desc()).limit(1)
        async with self.sessions() as session:
            row = await session.scalar(stmt)
            return IncidentRecord.model_validate(row) if row else None

    async def get_incident(self, key: str) -> IncidentRecord | None:
        async with self.sessions() as session:
            row = await session.scalar(select(IncidentRow).where(IncidentRow.key == key))
            return IncidentRecord.model_validate(row) if row else None

    async def set_incident_message(self, key: str, *, channel: str, ts: str, thread_ts: str | None = None) -> None:
        """Remember where the brief message lives, so refreshes edit it in place."""
        await self._update_incident(key, slack_channel=channel, slack_ts=ts, slack_thread_ts=thread_ts)

    async def set_incident_status(self, key: str, status: str) -> None:
        await self._update_incident(key, status=status)

    async def advance_incident_status(self, key: str, status: str, at: datetime) -> bool:
        """Set the status to one that happened at `at`, unless a later one is already stored.
        One conditional UPDATE, so deliveries arriving out of order (or on two replicas at
        once) end with the latest status. False when the change is older, or there is no
        such incident."""
        stmt = (update(IncidentRow)
                .where(IncidentRow.key == key,
                       or_(IncidentRow.status_at.is_(None), IncidentRow.status_at <= at))
                .values(status=status, status_at=at, updated_at=self.clock()))
        async with self.sessions() as session, session.begin():
            return rowcount(await session.execute(stmt)) == 1

    async def note_human_refresh(self, key: str) -> None:
        """A person asked for a refresh: counted whether or not the brief changed."""
        await self._update_incident(key, human_refreshes=IncidentRow.human_refreshes + 1)

    async def list_incidents(self, *, status: str | None = None) -> list[IncidentRecord]:
        stmt = select(IncidentRow).order_by(IncidentRow.created_at)
        if status is not None:
            stmt = stmt.where(IncidentRow.status == status)
        async with self.sessions() as session:
            return [IncidentRecord.model_validate(row) for row in await session.scalars(stmt)]

    async def _update_incident(self, key: str, **values: Any) -> None:
        async with self.sessions() as session, session.begin():
            stmt = update(IncidentRow).where(IncidentRow.key == key)
            result = await session.execute(stmt.values(**values, updated_at=self.clock()))
            if rowcount(result) == 0:
                raise UnknownRecord(f"no incident {key!r}")

    # --- briefs ----------------------------------------------------------------------------

    async def save_brief(self, incident_key: str, result: BriefResult, *, trigger: str | None = None,
                         requested_by: str | None = None, latency_ms: float | None = None) -> int:
        """Store `result` as the incident's next version and return that version number, with
        what triggered it, who asked and how long it took (the report's measures).

        Concurrent saves for one incident both compute the same next number; the unique
        (incident, version) key rejects one, which then retries with the number after.
        """
        for _ in range(_VERSION_RETRIES):
            try:
                return await self._insert_brief(incident_key, result, trigger=trigger, requested_by=requested_by,
                                                latency_ms=latency_ms)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not allocate a brief version for {incident_key!r}: too much contention")

    async def _insert_brief(self, incident_key: str, result: BriefResult, **measures: Any) -> int:
        async with self.sessions() as session, session.begin():
            incident_id = await self._incident_id(session, incident_key)
            last = await session.scalar(
                select(func.max(BriefRow.version)).where(BriefRow.incident_id == incident_id))
            draft = result.brief.draft
            row = BriefRow(incident_id=incident_id, version=(last or 0) + 1,
                           result=result.model_dump(mode="json"), drafter=draft.drafter,
                           model=draft.model, prompt_version=draft.prompt_version, created_at=self.clock(),
                           **measures)
            session.add(row)
            await session.flush()
            seen: set[str] = set()
            for item in result.evidence:
                if item.id in seen:  # the same record fetched twice: one row, the first
                    continue
                seen.add(item.id)
                session.add(EvidenceRow(brief_id=row.id, evidence_id=item.id, kind=item.kind.value,
                                        source=item.source.value, title=item.title, link=item.link,
                                        data=item.model_dump(mode="json")))
            return row.version

    async def get_brief(self, incident_key: str, version: int | None = None) -> BriefRecord | None:
        """One version, or the latest when `version` is None."""
        stmt = self._briefs(incident_key).order_by(BriefRow.version.desc()).limit(1)
        if version is not None:
            stmt = stmt.where(BriefRow.version == version)
        async with self.sessions() as session:
            row = (await session.execute(stmt)).first()
            return _brief_record(incident_key, row[0]) if row else None

    async def list_briefs(self, incident_key: str) -> list[BriefRecord]:
        async with self.sessions() as session:
            rows = await session.scalars(self._briefs(incident_key).order_by(BriefRow.version))
            return [_brief_record(incident_key, row) for row in rows]

    async def list_evidence(self, incident_key: str, version: int) -> list[Evidence]:
        stmt = (select(EvidenceRow.data).join(BriefRow, EvidenceRow.brief_id == BriefRow.id)
                .join(IncidentRow, BriefRow.incident_id == IncidentRow.id)
                .where(IncidentRow.key == incident_key, BriefRow.version == version)
                .order_by(EvidenceRow.id))
        async with self.sessions() as session:
            return [Evidence.model_validate(data) for data in await session.scalars(stmt)]

    @staticmethod
    def _briefs(incident_key: str) -> Any:
        return select(BriefRow).join(IncidentRow, BriefRow.incident_id == IncidentRow.id).where(
            IncidentRow.key == incident_key)

    @staticmethod
    async def _incident_id(session: AsyncSession, incident_key: str) -> int:
        incident_id = await session.scalar(select(IncidentRow.id).where(IncidentRow.key == incident_key))
        if incident_id is None:
            raise UnknownRecord(f"no incident {incident_key!r}")
        return incident_id

    async def _brief_id(self, session: AsyncSession, incident_key: str, version: int) -> int:
        brief_id = await session.scalar(
            select(BriefRow.id).join(IncidentRow, BriefRow.incident_id == IncidentRow.id)
            .where(IncidentRow.key == incident_key, BriefRow.version == version))
        if brief_id is None:
            raise UnknownRecord(f"no brief {incident_key!r} v{version}")
        return brief_id

    # --- feedback --------------------------------------------------------------------------

    async def save_feedback(self, *, incident_key: str, version: int, user: str, vote: Vote,
                            reason: str | None = None) -> None:
        """One vote per person per brief version; voting again replaces the earlier vote."""
        if vote not in ("up", "down"):
            raise ValueError(f"vote must be 'up' or 'down', not {vote!r}")
        now = self.clock()
        async with self.sessions() as session, session.begin():
            brief_id = await self._brief_id(session, incident_key, version)
            stmt = await insert_for(session, FeedbackRow)
            stmt = stmt.values(brief_id=brief_id, user_id=user, vote=vote, reason=reason,
                               created_at=now, updated_at=now)
            await session.execute(stmt.on_conflict_do_update(
                index_elements=[FeedbackRow.brief_id, FeedbackRow.user_id],
                set_={"vote": stmt.excluded.vote, "reason": stmt.excluded.reason,
                      "updated_at": stmt.excluded.updated_at}))

    async def list_feedback(self, incident_key: str, version: int) -> list[FeedbackRecord]:
        stmt = (select(FeedbackRow).join(BriefRow, FeedbackRow.brief_id == BriefRow.id)
                .join(IncidentRow, BriefRow.incident_id == IncidentRow.id)
                .where(IncidentRow.key == incident_key, BriefRow.version == version)
                .order_by(FeedbackRow.id))
        async with self.sessions() as session:
            return [FeedbackRecord(incident_key=incident_key, version=version, user=row.user_id,
                                   vote="up" if row.vote == "up" else "down", reason=row.reason,
                                   updated_at=row.updated_at)
                    for row in await session.scalars(stmt)]

    # --- webhook dedupe --------------------------------------------------------------------

    async def record_webhook_delivery(self, delivery_id: str, *, source: str = "pagerduty") -> bool:
        """True the first time a delivery is seen, False for every retry or duplicate, however
        many replicas receive it at once."""
        async with self.sessions() as session, session.begin():
            stmt = await insert_for(session, WebhookDeliveryRow)
            stmt = stmt.values(source=source, delivery_id=_stored_delivery_id(delivery_id), received_at=self.clock())
            result = await session.execute(stmt.on_conflict_do_nothing())
            return rowcount(result) == 1

    async def purge_webhook_deliveries(self, older_than: datetime) -> int:
        stmt = delete(WebhookDeliveryRow).where(WebhookDeliveryRow.received_at < older_than)
        return await self._delete(stmt)

    # --- spend -----------------------------------------------------------------------------

    async def add_spend(self, *, user: str | None, workspace: str, usd: float, tokens: int,
                        at: datetime | None = None) -> SpendTotals:
        """Add to the user's UTC day and the workspace's UTC month, atomically, and return the
        new totals. `user` None (a PagerDuty-triggered brief) charges the workspace only."""
        if usd < 0 or tokens < 0:
            raise ValueError("spend increments must not be negative")
        day = (at or self.clock()).astimezone(UTC).date()
        micros = round(usd * _MICROS)
        rows = [{"scope": "workspace", "subject": workspace, "period": workspace_period(day)}]
        if user is not None:
            rows.insert(0, {"scope": "user", "subject": user, "period": user_period(day)})
        now = self.clock()
        async with self.sessions() as session, session.begin():
            # Both totals in one statement (one round trip): the charge follows every model call.
            stmt = await insert_for(session, SpendRow)
            stmt = stmt.values([{**row, "usd_micros": micros, "tokens": tokens, "updated_at": now} for row in rows])
            upsert = stmt.on_conflict_do_update(
                index_elements=[SpendRow.scope, SpendRow.subject, SpendRow.period],
                set_={"usd_micros": SpendRow.usd_micros + stmt.excluded.usd_micros,
                      "tokens": SpendRow.tokens + stmt.excluded.tokens,
                      "updated_at": stmt.excluded.updated_at},
            ).returning(SpendRow.scope, SpendRow.usd_micros, SpendRow.tokens)
            totals = {scope: SpendTotal(usd=total / _MICROS, tokens=spent_tokens)
                      for scope, total, spent_tokens in (await session.execute(upsert)).all()}
        return SpendTotals(user_day=totals.get("user"), workspace_month=totals["workspace"])

    async def spend_today(self, user: str, day: date) -> SpendTotal:
        """The user's spend on UTC `day`."""
        return await self._spend("user", user, user_period(day))

    async def spend_month(self, workspace: str, month: date) -> SpendTotal:
        """The workspace's spend in the UTC month containing `month` (any day of it)."""
        return await self._spend("workspace", workspace, workspace_period(month))

    async def spend_totals(self, *, user: str | None, workspace: str, day: date) -> SpendTotals:
        """The user's UTC day and the workspace's UTC month containing `day`, in one query: the
        spend check runs before every model request, so it is one round trip, not two."""
        wanted = {("workspace", workspace, workspace_period(day))}
        if user is not None:
            wanted.add(("user", user, user_period(day)))
        stmt = select(SpendRow.scope, SpendRow.usd_micros, SpendRow.tokens).where(
            or_(*(and_(SpendRow.scope == scope, SpendRow.subject == subject, SpendRow.period == period)
                  for scope, subject, period in wanted)))
        async with self.sessions() as session:
            # At most one row per scope matches: the key is (scope, subject, period).
            found = {scope: SpendTotal(usd=micros / _MICROS, tokens=tokens)
                     for scope, micros, tokens in await session.execute(stmt)}
        return SpendTotals(user_day=found.get("user", SpendTotal(0.0, 0)) if user is not None else None,
                           workspace_month=found.get("workspace", SpendTotal(0.0, 0)))

    async def _spend(self, scope: str, subject: str, period: str) -> SpendTotal:
        stmt = select(SpendRow.usd_micros, SpendRow.tokens).where(
            SpendRow.scope == scope, SpendRow.subject == subject, SpendRow.period == period)
        async with self.sessions() as session:
            row = (await session.execute(stmt)).first()
            return SpendTotal(usd=row[0] / _MICROS, tokens=row[1]) if row else SpendTotal(0.0, 0)

    # --- response cache --------------------------------------------------------------------

    async def cache_get(self, key: str) -> Any | None:
        """The cached JSON value, or None when missing or expired."""
        stmt = select(CacheRow.value).where(CacheRow.key == key, CacheRow.expires_at > self.clock())
        async with self.sessions() as session:
            row = (await session.execute(stmt)).first()
            return row[0] if row else None

    async def cache_put(self, key: str, value: Any, *, ttl: timedelta) -> None:
        """Store a JSON-serialisable value for `ttl`; a put for an existing key replaces it."""
        if value is None:
            raise ValueError("cannot cache None: a miss already reads as None")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        now = self.clock()
        async with self.sessions() as session, session.begin():
            stmt = await insert_for(session, CacheRow)
            stmt = stmt.values(key=key, value=value, created_at=now, expires_at=now + ttl)
            await session.execute(stmt.on_conflict_do_update(
                index_elements=[CacheRow.key],
                set_={"value": stmt.excluded.value, "created_at": stmt.excluded.created_at,
                      "expires_at": stmt.excluded.expires_at}))

    async def purge_cache(self) -> int:
        """Delete expired entries (reads already ignore them; this reclaims the space)."""
        return await self._delete(delete(CacheRow).where(CacheRow.expires_at <= self.clock()))

    async def _delete(self, stmt: Any) -> int:
        async with self.sessions() as session, session.begin():
            return rowcount(await session.execute(stmt))


def _stored_delivery_id(delivery_id: str) -> str:
    """The id as stored: itself, or (when it holds something a mask would hide) its hash, which
    dedupes as well and keeps the outside value out of the database."""
    if redact(delivery_id) == delivery_id:
        return delivery_id
    return "sha256:" + hashlib.sha256(delivery_id.encode("utf-8", "surrogatepass")).hexdigest()


def _brief_record(incident_key: str, row: BriefRow) -> BriefRecord:
    return BriefRecord(incident_key=incident_key, version=row.version,
                       result=BriefResult.model_validate(row.result), drafter=row.drafter,
                       model=row.model, prompt_version=row.prompt_version, created_at=row.created_at)
