"""Store sessions per event loop (`bot.store.loops`): each loop gets its own engine on the same
database; an in-memory SQLite store is never shared (a second engine would be a second database)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.store.db import migrate
from bot.store.loops import LoopSessions


async def _count(sessions: LoopSessions) -> int:
    async with sessions() as session:
        return int((await session.execute(text("SELECT count(*) FROM incidents"))).scalar_one())


async def test_each_loop_has_its_own_engine_on_the_same_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'loops.db'}"
    await migrate(url)
    sessions = LoopSessions.for_url(url)
    here = sessions.engine()
    assert sessions.shareable
    assert await _count(sessions) == 0

    def other_loop() -> tuple[int, bool]:
        async def run() -> tuple[int, bool]:
            try:
                return await _count(sessions), sessions.engine() is here
            finally:
                await sessions.dispose_loop()
        return asyncio.run(run())

    assert await asyncio.to_thread(other_loop) == (0, False)
    assert sessions.engine() is here
    await sessions.dispose_loop()


def test_an_in_memory_store_stays_on_its_first_loop() -> None:
    sessions = LoopSessions.for_url("sqlite+aiosqlite://")
    assert not sessions.shareable

    async def take() -> None:
        sessions.engine()

    asyncio.run(take())
    with pytest.raises(RuntimeError, match="in-memory"):
        asyncio.run(take())
