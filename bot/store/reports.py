"""Answers for the people who run the bot, from the store (SQLite or PostgreSQL): the whole
story of one incident (`incident_audit`), spend against the limits (`spend_report`), and the
measures of trust over a period (`trust_report`). Read-only queries; the rendering is the
CLI's (`bot.app.reports`), the daily digest's and anyone else's."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.audit import ALERT_NOT_POSTED, BRIEF_ABANDONED, BriefCheckRecord, ModelCallRecord, ToolCallRecord
from bot.store.approvals import Approval, Approvals
from bot.store.repo import FeedbackRecord, IncidentRecord, Store, user_period, workspace_period
from bot.store.tables import (
    ApprovalRow,
    BriefCheckRow,
    BriefRow,
    ControlEventRow,
    FeedbackRow,
    IncidentRow,
    ModelCallRow,
    SpendRow,
    ToolCallRow,
)

_MICROS = 1_000_000
_ANSWERED = ("ok", "repaired", "schema_error")  # requests that came back with an answer to check
_PASSED = ("ok", "repaired")


@dataclass(frozen=True)
class BriefVersion:
    version: int
    created_at: datetime
    drafter: str
    model: str | None
    trigger: str | None
    requested_by: str | None
    latency_ms: float | None
    cause: str | None
    fallback_reason: str | None
    cost_usd: float
    feedback: list[FeedbackRecord] = field(default_factory=list)


@dataclass(frozen=True)
class IncidentAudit:
    incident: IncidentRecord
    briefs: list[BriefVersion]
    tool_calls: list[ToolCallRecord]
    model_calls: list[ModelCallRecord]
    brief_checks: list[BriefCheckRecord]
    approvals: list[Approval]

    @property
    def cost_usd(self) -> float:
        return sum(call.cost_usd for call in self.model_calls)

    @property
    def tickets(self) -> list[str]:
        return [approval.jira_key for approval in self.approvals if approval.jira_key]


@dataclass(frozen=True)
class SpendLine:
    scope: str  # user | workspace
    subject: str
    period: str
    usd: float
    tokens: int
    limit_usd: float

    @property
    def used(self) -> float:
        return self.usd / self.limit_usd if self.limit_usd > 0 else (1.0 if self.usd > 0 else 0.0)


@dataclass(frozen=True)
class SourceCalls:
    source: str
    calls: int
    gaps: int  # the source failed (a timeout, 5xx, refused...): shown in the brief as a gap
    errors: int  # a connector failed unexpectedly
    denied: int  # the policy or the step cap said no

    @property
    def failed(self) -> int:
        return self.gaps + self.errors


@dataclass(frozen=True)
class TrustReport:
    since: datetime
    until: datetime
    incidents: int
    briefs: int
    by_trigger: dict[str, int]
    causes: dict[str, int]  # the latest brief of each incident: its top cause
    citation_coverage: float | None  # mean share of claims citing valid evidence
    briefs_fixed_by_check: int  # briefs whose citation check had to drop or mark something
    model_requests: int
    schema_passed: int
    schema_checked: int
    tool_sources: list[SourceCalls]
    fallbacks: int  # briefs drafted offline after the model path failed
    fallback_reasons: dict[str, int]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: float
    votes_up: int
    votes_down: int
    tickets_filed: int
    tickets_edited: int  # filed after the proposal was edited in the modal
    tickets_rejected: int
    refreshed_incidents: int  # incidents a person asked to refresh
    overridden_incidents: int  # incidents with any of: edited or rejected ticket, refresh, thumbs-down
    alerts_not_posted: dict[str, int]  # per service: alerts accepted but with no channel to post to
    briefs_abandoned: int = 0  # incidents whose publishing gave up after its last attempt

    @property
    def schema_pass_rate(self) -> float | None:
        return self.schema_passed / self.schema_checked if self.schema_checked else None

    @property
    def cost_per_brief(self) -> float | None:
        return self.cost_usd / self.briefs if self.briefs else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden_incidents / self.incidents if self.incidents else None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every answer is a latency that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def fallback_kind(reason: str) -> str:
    """A fallback reason in a few words, for counting (the reason itself is free text)."""
    lowered = reason.lower()
    if "budget" in lowered:
        return "spend limit"
    if "step cap" in lowered:
        return "step cap"
    if "no model" in lowered:
        return "no model configured"
    return "every model failed"


class Reports:
    """Read-only queries over one session factory."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.store = Store(sessions)
        self.approvals = Approvals(sessions)

    async def incident_audit(self, key: str) -> IncidentAudit | None:
        incident = await self.store.get_incident(key)
        if incident is None:
            return None
        model_calls = await self.store.list_model_calls(key)
        stmt = (select(BriefRow).join(IncidentRow, BriefRow.incident_id == IncidentRow.id)
                .where(IncidentRow.key == key).order_by(BriefRow.version))
        async with self.sessions() as session:
            rows = list(await session.scalars(stmt))
        briefs = []
        for row in rows:
            draft = row.result.get("brief", {}).get("draft", {})
            briefs.append(BriefVersion(
                version=row.version, created_at=row.created_at, drafter=row.drafter, model=row.model,
                trigger=row.trigger, requested_by=row.requested_by, latency_ms=row.latency_ms,
                cause=_top_cause(row.result), fallback_reason=draft.get("fallback_reason"),
                cost_usd=float(draft.get("cost_usd") or 0.0),
                feedback=await self.store.list_feedback(key, row.version)))
        return IncidentAudit(incident=incident, briefs=briefs, tool_calls=await self.store.list_tool_calls(key),
                             model_calls=model_calls, brief_checks=await self.store.list_brief_checks(key),
                             approvals=await self.approvals.list_for_incident(key))

    async def find_incidents(self, fragment: str, *, limit: int = 10) -> list[IncidentRecord]:
        """Incidents whose key contains `fragment` (a PagerDuty id, a channel, a service), newest
        first: what `audit` offers when a key does not match exactly."""
        escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = (select(IncidentRow).where(IncidentRow.key.like(f"%{escaped}%", escape="\\"))
                .order_by(IncidentRow.created_at.desc()).limit(limit))
        async with self.sessions() as session:
            return [IncidentRecord.model_validate(row) for row in await session.scalars(stmt)]

    async def spend_report(self, *, day: date, per_user_limit: float, per_workspace_limit: float,
                           workspace: str | None = None, user: str | None = None) -> list[SpendLine]:
        """Today's spend per user and this month's per workspace, against the limits: the named
        user (else every user who spent today, unless only a workspace is named) and the named
        workspace (else every workspace that spent this month)."""
        wanted = []
        if workspace is None or user is not None:
            users = select(SpendRow).where(SpendRow.scope == "user", SpendRow.period == user_period(day))
            wanted.append(users.where(SpendRow.subject == user) if user is not None else users)
        spaces = select(SpendRow).where(SpendRow.scope == "workspace", SpendRow.period == workspace_period(day))
        wanted.append(spaces.where(SpendRow.subject == workspace) if workspace is not None else spaces)
        lines: list[SpendLine] = []
        async with self.sessions() as session:
            for stmt in wanted:
                for row in await session.scalars(stmt.order_by(SpendRow.usd_micros.desc(), SpendRow.subject)):
                    limit = per_user_limit if row.scope == "user" else per_workspace_limit
                    lines.append(SpendLine(row.scope, row.subject, row.period, row.usd_micros / _MICROS,
                                           row.tokens, limit))
        named = {("user", user), ("workspace", workspace)}
        for scope, subject in named:  # a named subject with no spend yet still gets its line
            if subject is not None and not any(line.scope == scope and line.subject == subject for line in lines):
                limit = per_user_limit if scope == "user" else per_workspace_limit
                period = user_period(day) if scope == "user" else workspace_period(day)
                lines.append(SpendLine(scope, subject, period, 0.0, 0, limit))
        return lines

    async def trust_report(self, *, since: datetime, until: datetime) -> TrustReport:
        async with self.sessions() as session:
            briefs = (await session.execute(
                select(IncidentRow.key, BriefRow.version, BriefRow.trigger, BriefRow.latency_ms, BriefRow.result,
                       BriefRow.drafter)
                .join(IncidentRow, BriefRow.incident_id == IncidentRow.id)
                .where(BriefRow.created_at >= since, BriefRow.created_at < until)
                .order_by(IncidentRow.key, BriefRow.version))).all()
            checks = (await session.execute(
                select(BriefCheckRow.coverage, BriefCheckRow.outcome)
                .where(BriefCheckRow.at >= since, BriefCheckRow.at < until))).all()
            calls = (await session.execute(
                select(ModelCallRow.outcome, func.count(), func.coalesce(func.sum(ModelCallRow.cost_usd), 0.0))
                .where(ModelCallRow.at >= since, ModelCallRow.at < until)
                .group_by(ModelCallRow.outcome))).all()
            tools = (await session.execute(
                select(ToolCallRow.tool, ToolCallRow.outcome, func.count())
                .where(ToolCallRow.at >= since, ToolCallRow.at < until)
                .group_by(ToolCallRow.tool, ToolCallRow.outcome))).all()
            votes = (await session.execute(
                select(IncidentRow.key, FeedbackRow.vote)
                .join(BriefRow, FeedbackRow.brief_id == BriefRow.id)
                .join(IncidentRow, BriefRow.incident_id == IncidentRow.id)
                .where(FeedbackRow.updated_at >= since, FeedbackRow.updated_at < until))).all()
            approvals = (await session.execute(
                select(ApprovalRow.incident_key, ApprovalRow.state, ApprovalRow.edited)
                .where(ApprovalRow.updated_at >= since, ApprovalRow.updated_at < until))).all()
            not_posted = (await session.execute(
                select(ControlEventRow.subject, func.count())
                .where(ControlEventRow.kind == ALERT_NOT_POSTED, ControlEventRow.at >= since,
                       ControlEventRow.at < until)
                .group_by(ControlEventRow.subject))).all()
            abandoned = await session.scalar(
                select(func.count(func.distinct(ControlEventRow.subject)))
                .where(ControlEventRow.kind == BRIEF_ABANDONED, ControlEventRow.at >= since,
                       ControlEventRow.at < until))
            keys = {row.key for row in briefs}
            refreshed = set((await session.scalars(
                select(IncidentRow.key).where(IncidentRow.key.in_(keys), IncidentRow.human_refreshes > 0)
            )).all()) if keys else set()
        latest: dict[str, Any] = {}
        fallbacks: Counter[str] = Counter()
        for row in briefs:
            latest[row.key] = row.result
            draft = row.result.get("brief", {}).get("draft", {})
            if row.drafter == "offline" and draft.get("fallback_reason"):
                fallbacks[fallback_kind(str(draft["fallback_reason"]))] += 1
        by_outcome = {outcome: int(count) for outcome, count, _ in calls}
        sources: dict[str, Counter[str]] = defaultdict(Counter)
        for tool, outcome, count in tools:
            sources[tool.split(".", 1)[0]][outcome] += int(count)
        down = {key for key, vote in votes if vote == "down"}
        filed = [row for row in approvals if row.state == "done"]
        edited = {row.incident_key for row in filed if row.edited}
        rejected = {row.incident_key for row in approvals if row.state == "rejected"}
        latencies = [row.latency_ms for row in briefs if row.latency_ms is not None]
        return TrustReport(
            since=since, until=until, incidents=len(keys), briefs=len(briefs),
            by_trigger=dict(Counter(row.trigger or "unknown" for row in briefs)),
            causes=dict(Counter(cause for result in latest.values() if (cause := _top_cause(result)))),
            citation_coverage=sum(c.coverage for c in checks) / len(checks) if checks else None,
            briefs_fixed_by_check=sum(1 for c in checks if c.outcome == "fixed"),
            model_requests=sum(by_outcome.values()),
            schema_passed=sum(by_outcome.get(o, 0) for o in _PASSED),
            schema_checked=sum(by_outcome.get(o, 0) for o in _ANSWERED),
            tool_sources=[SourceCalls(source, sum(c.values()), c["gap"], c["error"], c["denied"])
                          for source, c in sorted(sources.items())],
            fallbacks=sum(fallbacks.values()), fallback_reasons=dict(fallbacks),
            latency_p50_ms=percentile(latencies, 0.50), latency_p95_ms=percentile(latencies, 0.95),
            cost_usd=float(sum(cost for _, _, cost in calls)),
            votes_up=sum(1 for _, vote in votes if vote == "up"), votes_down=len([v for v in votes if v[1] == "down"]),
            tickets_filed=len(filed), tickets_edited=len([row for row in filed if row.edited]),
            tickets_rejected=len([row for row in approvals if row.state == "rejected"]),
            refreshed_incidents=len(refreshed),
            overridden_incidents=len(keys & (edited | rejected | refreshed | down)),
            alerts_not_posted={service: int(count) for service, count in not_posted},
            briefs_abandoned=int(abandoned or 0),
        )


def _top_cause(result: dict[str, Any]) -> str | None:
    causes = result.get("brief", {}).get("likely_causes") or []
    return str(causes[0].get("kind")) if causes else None
