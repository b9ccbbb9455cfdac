"""The publish step of an incident as stored state (issue 13, finding 2): claimed → posted →
updated → final, with an attempt counter, a lease/back-off time and the last failure.

Who may act on an incident short of final is decided by one conditional UPDATE (`take_publish`):
the attempt counter is its version, so of two replicas, a clock and a redelivery, exactly one
takes a given attempt. The policy (how long a lease lasts, how the back-off grows, how many
attempts) is the caller's (`bot.slack.lifecycle`); this module only stores it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.audit import rowcount
from bot.store.tables import IncidentRow

PublishState = Literal["claimed", "posted", "updated", "final"]
PUBLISH_STATES: tuple[PublishState, ...] = ("claimed", "posted", "updated", "final")


class PublishRows:
    """Mixed into `bot.store.repo.Store`: the publish step's columns of the incidents table."""

    sessions: async_sessionmaker[AsyncSession]

    async def set_publish_state(self, key: str, state: PublishState, *, now: datetime) -> None:
        """Record progress. Never moves backwards (a late "updated" after "final" is ignored);
        reaching final clears the lease and the last failure."""
        beyond = PUBLISH_STATES[PUBLISH_STATES.index(state) + 1:]
        values: dict[str, Any] = {"publish_state": state, "updated_at": now}
        if state == "final":
            values.update(publish_retry_at=None, publish_error=None)
        where = IncidentRow.key == key
        if beyond:
            where = and_(where, IncidentRow.publish_state.not_in(beyond))
        await self._publish_update(where, values)

    async def publish_failed(self, key: str, error: str, *, retry_at: datetime, now: datetime) -> None:
        """The attempt failed (Slack refused, drafting raised): say why and when to try again."""
        await self._publish_update(
            and_(IncidentRow.key == key, IncidentRow.publish_state != "final"),
            {"publish_error": error[:1000], "publish_retry_at": retry_at, "updated_at": now})

    async def take_publish(self, key: str, *, attempts: int, now: datetime, lease_until: datetime,
                           max_attempts: int, after_failure: bool = False) -> bool:
        """Take the next attempt of an unfinished incident: True for exactly one caller. Allowed
        when the lease or back-off has run out, or (`after_failure`: a redelivery, a person
        asking again) as soon as the last attempt has recorded its failure and ended."""
        due = or_(IncidentRow.publish_retry_at.is_(None), IncidentRow.publish_retry_at <= now)
        if after_failure:
            due = or_(due, IncidentRow.publish_error.is_not(None))
        if attempts >= max_attempts:
            return False
        where = and_(IncidentRow.key == key, IncidentRow.publish_state != "final",
                     IncidentRow.publish_attempts == attempts, due)
        return await self._publish_update(where, {
            "publish_attempts": attempts + 1, "publish_retry_at": lease_until, "publish_error": None,
            "updated_at": now}) == 1

    async def unfinished_incidents(self, *, now: datetime, max_attempts: int) -> list[str]:
        """Keys of incidents short of final whose lease or back-off has run out and that have
        attempts left: what the clock finishes, oldest first."""
        stmt = select(IncidentRow.key).where(
            IncidentRow.publish_state != "final", IncidentRow.publish_attempts < max_attempts,
            or_(IncidentRow.publish_retry_at.is_(None), IncidentRow.publish_retry_at <= now),
        ).order_by(IncidentRow.created_at)
        async with self.sessions() as session:
            return list(await session.scalars(stmt))

    async def _publish_update(self, where: Any, values: dict[str, Any]) -> int:
        async with self.sessions() as session, session.begin():
            return rowcount(await session.execute(update(IncidentRow).where(where).values(**values)))
