"""Exactly one clock acts at a time (`bot.store.replicas.leader`, `bot.app.clock.run_clock`): two clocks on
separate engines against one store, in-process; the second takes over when the first stops or
its lock connection dies. The two-replica test (test_replicas.py) does the same with processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app.bootstrap import build_runtime
from bot.app.clock import Maintenance, run_clock
from bot.core.config import Settings
from bot.runtime import Runtime
from bot.store.db import create_engine_for
from bot.store.replicas.leader import CLOCK_LOCK_ID, FileLeaderLock, LeaderLock, PostgresLeaderLock, leader_lock
from sandbox.people import wait_for

RETRY_S = 0.1


class Recording(Maintenance):
    """The real jobs' entry point, recording which clock ran it instead of doing housekeeping."""

    def __init__(self, rt: Runtime, name: str, ran: list[str]) -> None:
        super().__init__(rt)
        self.name, self.ran = name, ran

    async def run_all(self) -> dict[str, int]:
        self.ran.append(self.name)
        return {}


@pytest.fixture
async def rt(db_url: str) -> AsyncIterator[Runtime]:
    runtime = await build_runtime(Settings(database_url=db_url))
    yield runtime
    await runtime.store.sessions.kw["bind"].dispose()


def _clock(rt: Runtime, name: str, ran: list[str], lock: LeaderLock) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_clock(rt, lock=lock, maintenance=Recording(rt, name, ran), retry_s=RETRY_S,
                                         stop=stop))
    return task, stop


async def test_one_clock_leads_and_the_other_takes_over_when_it_stops(rt: Runtime, db_url: str) -> None:
    ran: list[str] = []
    first, stop_first = _clock(rt, "first", ran, leader_lock(db_url))
    await wait_for(lambda: ran == ["first"] or None, "the first clock to lead")
    second, stop_second = _clock(rt, "second", ran, leader_lock(db_url))  # its own lock, own connection
    await asyncio.sleep(RETRY_S * 10)  # ten tries of the standby
    assert ran == ["first"], "the standby does not act while the leader holds the lock"
    stop_first.set()
    await first
    await wait_for(lambda: ran == ["first", "second"] or None, "the second clock to take over", timeout=10)
    stop_second.set()
    await second


@pytest.mark.postgres
async def test_a_clock_whose_lock_connection_dies_stops_acting_and_the_standby_takes_over(
        rt: Runtime, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the advisory lock's connection")
    ran: list[str] = []
    first, stop_first = _clock(rt, "first", ran, PostgresLeaderLock(db_url))
    await wait_for(lambda: ran == ["first"] or None, "the first clock to lead")
    second, stop_second = _clock(rt, "second", ran, PostgresLeaderLock(db_url))
    await asyncio.sleep(RETRY_S * 5)
    # The server ends the leader's session (a network cut, a failover): its lock goes with it.
    admin = create_engine_for(db_url)
    async with admin.begin() as connection:
        killed = await connection.scalar(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' "
            "AND objid = :id AND granted"), {"id": CLOCK_LOCK_ID})
    await admin.dispose()
    assert killed == 1
    await wait_for(lambda: len(ran) == 2 or None, "a clock to lead again", timeout=10)
    await asyncio.sleep(RETRY_S * 10)
    assert not first.done(), "the first clock stands by again, it does not crash"
    assert ran == ["first", "second"], "the standby took over, and nobody took the lock from it"
    stop_second.set()
    stop_first.set()
    await asyncio.gather(first, second)


async def test_a_job_fired_after_the_lock_is_lost_does_nothing(rt: Runtime) -> None:
    maintenance = Maintenance(rt)
    maintenance.leading = False
    from bot.app.clock import build_scheduler

    jobs = build_scheduler(maintenance).get_jobs()
    assert jobs
    assert [await job.func() for job in jobs] == [0] * len(jobs)
    assert maintenance.counts == {}


async def test_the_sqlite_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    path = tmp_path / "bot.db.clock.lock"
    one, two = FileLeaderLock(path), FileLeaderLock(path)
    assert await one.try_acquire()
    assert not await two.try_acquire()
    assert await one.still_held()
    await one.release()
    assert await two.try_acquire()
    await two.release()
