"""Canary models in the store: which candidates were switched off (every replica reads it before
a canary brief) and the numbers each side of a route made over a window (the canary watch's
evidence). Switching off is one insert-if-absent with its audit row in the same transaction,
so two clocks (or a clock and an operator) cannot both announce it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.audit import ControlRecord, utcnow
from bot.store.audit import rowcount
from bot.store.tables import BriefRow, CanaryStateRow, ControlEventRow, FeedbackRow, IncidentRow, ModelCallRow
from bot.store.upsert import insert_for

SWITCHED_OFF = "canary_switched_off"
SWITCHED_ON = "canary_switched_on"
_ANSWERED = ("ok", "repaired", "cache_hit")
_NOT_MADE = ("cache_hit", "budget", "step_cap")  # no request reached the model


@dataclass(frozen=True)
class ArmStats:
    """One side of a route over the window."""

    model: str
    briefs: int = 0
    requests: int = 0  # model requests made (cache hits and refusals excluded)
    validation_failures: int = 0  # requests whose answer failed the schema or the checks
    fallbacks: int = 0  # briefs this side's first model did not answer
    latency_ms: float = 0.0  # mean per request made
    cost_usd: float = 0.0  # total
    voted: int = 0  # briefs with at least one vote
    down: int = 0  # of those, briefs with a thumbs-down

    @staticmethod
    def rate(part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    @property
    def validation_failure_rate(self) -> float:
        return self.rate(self.validation_failures, self.requests)

    @property
    def fallback_rate(self) -> float:
        return self.rate(self.fallbacks, self.briefs)

    @property
    def down_rate(self) -> float:
        return self.rate(self.down, self.voted)

    @property
    def cost_per_brief(self) -> float:
        return self.cost_usd / self.briefs if self.briefs else 0.0


class CanaryStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Any = utcnow) -> None:
        self.sessions = sessions
        self.clock = clock

    async def switched_off(self, route: str, model: str) -> bool:
        stmt = select(CanaryStateRow.state).where(CanaryStateRow.route == route, CanaryStateRow.model == model)
        async with self.sessions() as session:
            return await session.scalar(stmt) == "off"

    async def switch_off(self, route: str, model: str, *, reason: str, actor: str,
                         data: dict[str, Any] | None = None) -> bool:
        """Switch the candidate off; True only for the caller that did it (with its audit row)."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            stmt = await insert_for(session, CanaryStateRow)
            inserted = await session.execute(stmt.values(
                route=route, model=model, state="off", reason=reason, changed_by=actor, changed_at=now,
            ).on_conflict_do_nothing())
            if rowcount(inserted) != 1:
                return False
            session.add(ControlEventRow(kind=SWITCHED_OFF, subject=f"{route}:{model}", actor=actor, detail=reason,
                                        data=data or {}, at=now))
            return True

    async def switch_on(self, route: str, model: str, *, actor: str) -> bool:
        """An operator puts a switched-off candidate back (after fixing what made it worse)."""
        async with self.sessions() as session, session.begin():
            deleted = await session.execute(delete(CanaryStateRow).where(
                CanaryStateRow.route == route, CanaryStateRow.model == model))
            if rowcount(deleted) != 1:
                return False
            session.add(ControlEventRow(kind=SWITCHED_ON, subject=f"{route}:{model}", actor=actor,
                                        detail="switched on by an operator", data={}, at=self.clock()))
            return True

    async def events(self) -> list[ControlRecord]:
        stmt = select(ControlEventRow).where(ControlEventRow.kind.in_((SWITCHED_OFF, SWITCHED_ON))).order_by(
            ControlEventRow.id)
        async with self.sessions() as session:
            return [ControlRecord.model_validate(row, from_attributes=True) for row in await session.scalars(stmt)]

    async def arm_stats(self, route: str, *, since: datetime, models: dict[str, str]) -> dict[str, ArmStats]:
        """Each side's numbers for `route` since `since`; `models` names each side's first model
        (the candidate, the baseline route): a brief that model did not answer fell back."""
        calls = (select(ModelCallRow.id, ModelCallRow.brief_key, ModelCallRow.arm, ModelCallRow.model,
                        ModelCallRow.outcome, ModelCallRow.latency_ms, ModelCallRow.cost_usd)
                 .where(ModelCallRow.task == route, ModelCallRow.arm.is_not(None), ModelCallRow.at >= since)
                 .order_by(ModelCallRow.id))
        async with self.sessions() as session:
            rows = (await session.execute(calls)).all()
            keys = {row.brief_key for row in rows if row.brief_key}
            votes = (await session.execute(
                select(IncidentRow.key, FeedbackRow.vote)
                .join(BriefRow, FeedbackRow.brief_id == BriefRow.id)
                .join(IncidentRow, BriefRow.incident_id == IncidentRow.id)
                .where(IncidentRow.key.in_(keys)))).all() if keys else []
        voted: dict[str, set[str]] = defaultdict(set)
        for key, vote in votes:
            voted[key].add(vote)
        by_arm: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_arm[row.arm].append(row)
        return {arm: _stats(models.get(arm, ""), by_arm.get(arm, []), voted) for arm in ("baseline", "canary")}


def _stats(model: str, rows: list[Any], voted: dict[str, set[str]]) -> ArmStats:
    made = [row for row in rows if row.outcome not in _NOT_MADE]
    briefs: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        briefs[row.brief_key or f"row:{row.id}"].append(row)
    fallbacks = sum(1 for calls in briefs.values()
                    if not any(call.model == model and call.outcome in _ANSWERED for call in calls))
    with_votes = [key for key in briefs if voted.get(key)]
    return ArmStats(
        model=model, briefs=len(briefs), requests=len(made),
        validation_failures=sum(1 for row in made if row.outcome == "schema_error"),
        fallbacks=fallbacks,
        latency_ms=sum(row.latency_ms for row in made) / len(made) if made else 0.0,
        cost_usd=sum(row.cost_usd for row in rows),
        voted=len(with_votes), down=sum(1 for key in with_votes if "down" in voted[key]))
