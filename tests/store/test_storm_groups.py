"""Storm groups in the store (`bot.store.replicas.storms`): one leader per window however many
deliveries race for it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.replicas.storms import StormGroups
from tests.helpers.db import T0

WINDOW = timedelta(minutes=10)


async def test_concurrent_alerts_of_one_group_get_one_leader(sessions: async_sessionmaker[AsyncSession]) -> None:
    groups = StormGroups(sessions)
    keys = [f"pd:Q{n}" for n in range(20)]
    # Every incident twice (a duplicate delivery), all at once.
    joined = await asyncio.gather(*(groups.join(group_key="C1:checkout", incident_key=key,
                                                at=T0 + timedelta(seconds=n), window=WINDOW)
                                    for n, key in enumerate(keys + keys)))
    leaders = {m.leader_key for m in joined}
    assert len(leaders) == 1
    [leader] = leaders
    # The leader's own two deliveries both lead (the incident claim then posts once).
    assert sum(m.leads for m in joined) == 2
    assert sorted(await groups.members(leader)) == sorted(k for k in keys if k != leader)
    assert await groups.leader_of(keys[0] if keys[0] != leader else keys[1]) == leader
    assert await groups.leader_of(leader) is None


async def test_a_window_ends_after_its_length_or_when_the_leader_resolves(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    groups = StormGroups(sessions)
    first = await groups.join(group_key="C1:checkout", incident_key="pd:A", at=T0, window=WINDOW)
    inside = await groups.join(group_key="C1:checkout", incident_key="pd:B", at=T0 + WINDOW, window=WINDOW)
    other = await groups.join(group_key="C1:search", incident_key="pd:S", at=T0, window=WINDOW)
    after = await groups.join(group_key="C1:checkout", incident_key="pd:C", at=T0 + WINDOW * 2, window=WINDOW)
    assert (first.leads, inside.leader_key, other.leads, after.leads) == (True, "pd:A", True, True)
    # B's redelivery, after its window: still A's member, not a new leader.
    again = await groups.join(group_key="C1:checkout", incident_key="pd:B", at=T0 + WINDOW * 3, window=WINDOW)
    assert again.leader_key == "pd:A"
    assert not again.leads
    assert await groups.close("pd:C") == 1
    reopened = await groups.join(group_key="C1:checkout", incident_key="pd:D", at=T0 + WINDOW * 2, window=WINDOW)
    assert reopened.leads
    await groups.leave("pd:B")
    assert await groups.leader_of("pd:B") is None
