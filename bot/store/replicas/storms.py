"""Alert-storm groups in the store, so every replica and every retry agrees on one leader.

`join` is one conditional upsert on the group's row: the first incident of a group key opens
the window and leads; later ones within the window join the leader; the first one after the
window (or after the leader resolved and `close` ended the window) opens a new one. The
database decides races (two replicas, duplicate deliveries), as for the incident claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from bot.store.replicas.bounded import Sessions
from bot.store.tables import StormGroupRow, StormMemberRow
from bot.store.upsert import insert_for


@dataclass(frozen=True)
class Membership:
    leader_key: str
    leads: bool


class StormGroups:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def join(self, *, group_key: str, incident_key: str, at: datetime, window: timedelta) -> Membership:
        """Lead a new window of `group_key` or join the open one; an incident that already
        joined a leader stays with it (a redelivery after the window is still that member)."""
        # Three short transactions, each opening with its write when it has one: a SQLite
        # transaction that reads and then writes fails at once ("database is locked") when
        # another writer committed in between, instead of waiting its turn.
        member = await self.leader_of(incident_key)
        if member is not None:
            return Membership(member, leads=False)
        async with self.sessions() as session, session.begin():
            stmt = await insert_for(session, StormGroupRow)
            stmt = stmt.values(group_key=group_key, leader_key=incident_key, opened_at=at)
            await session.execute(stmt.on_conflict_do_update(
                index_elements=[StormGroupRow.group_key],
                set_={"leader_key": stmt.excluded.leader_key, "opened_at": stmt.excluded.opened_at},
                where=StormGroupRow.opened_at < at - window))
            leader = await session.scalar(
                select(StormGroupRow.leader_key).where(StormGroupRow.group_key == group_key))
        if leader is None or leader == incident_key:
            return Membership(incident_key, leads=True)
        async with self.sessions() as session, session.begin():
            row = await insert_for(session, StormMemberRow)
            await session.execute(row.values(incident_key=incident_key, leader_key=leader, group_key=group_key,
                                             joined_at=at).on_conflict_do_nothing())
            # A concurrent delivery of the same incident may have joined first: its leader wins.
            joined = await session.scalar(
                select(StormMemberRow.leader_key).where(StormMemberRow.incident_key == incident_key))
        return Membership(joined or leader, leads=False)

    async def leader_of(self, incident_key: str) -> str | None:
        """The leader whose thread a grouped incident replies in (None when not grouped)."""
        async with self.sessions() as session:
            return await session.scalar(
                select(StormMemberRow.leader_key).where(StormMemberRow.incident_key == incident_key))

    async def members(self, leader_key: str) -> list[str]:
        async with self.sessions() as session:
            rows = await session.scalars(select(StormMemberRow.incident_key).where(
                StormMemberRow.leader_key == leader_key).order_by(StormMemberRow.joined_at))
            return list(rows)

    async def leave(self, incident_key: str) -> None:
        """The incident gets its own brief after all (its leader never posted one)."""
        async with self.sessions() as session, session.begin():
            await session.execute(delete(StormMemberRow).where(StormMemberRow.incident_key == incident_key))

    async def close(self, leader_key: str) -> int:
        """The leader resolved: its window ends, the next alert of the group opens a new brief."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(delete(StormGroupRow).where(StormGroupRow.leader_key == leader_key))
            return int(getattr(result, "rowcount", 0) or 0)
