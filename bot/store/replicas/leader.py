"""Who leads the scheduler: exactly one `clock` acts at a time, however many run.

Several clock replicas (a rolling deploy, a second one for availability) must not each purge,
recover approvals, refresh briefs and post the digest. The lock lives with the store every
replica shares:

- PostgreSQL: a session-level ``pg_try_advisory_lock`` on a dedicated connection (its own
  engine, no pool), held for as long as this clock leads. The server releases it when that
  connection ends, so a clock that crashes, is killed or loses the network hands over without
  a timeout to tune; a standby takes over at its next try.
- SQLite: an exclusive ``flock`` on a file beside the database (``<db>.clock.lock``), which the
  kernel releases when the process ends. In-memory SQLite is one process's own store: it leads.

`LeaderLock.still_held` is asked between rounds: a dedicated connection that died means the
lock is gone (another clock may lead already), and this clock stops acting at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import create_engine_for
from bot.store.replicas.health import sqlite_file

log = logging.getLogger("incident_brief.store.leader")

# Any constant, the same in every replica, different from the migration lock's.
CLOCK_LOCK_ID = 0x1B_C10C


class LeaderLock(Protocol):
    async def try_acquire(self) -> bool: ...
    async def still_held(self) -> bool: ...
    async def release(self) -> None: ...


class PostgresLeaderLock:
    """``pg_try_advisory_lock`` held on a connection of its own for as long as this clock leads."""

    def __init__(self, url: str, lock_id: int = CLOCK_LOCK_ID, *, connect_timeout_s: float = 5.0) -> None:
        from sqlalchemy.pool import NullPool

        # NullPool: closing the connection really ends the session, and with it the lock.
        self._engine = create_engine_for(url, poolclass=NullPool, connect_args={"timeout": connect_timeout_s})
        self._lock_id = lock_id
        self._connection: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._connection is not None:
            return await self.still_held()
        try:
            connection = await self._engine.connect()
        except (OSError, SQLAlchemyError) as exc:
            log.warning("scheduler lock: cannot reach the store: %s", type(exc).__name__)
            return False
        try:
            got = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": self._lock_id}))
            await connection.commit()  # a session-level lock outlives the transaction
        except (OSError, SQLAlchemyError):
            await _close(connection)
            return False
        if not got:  # another clock leads: hold no idle connection while standing by
            await _close(connection)
            return False
        self._connection = connection
        return True

    async def still_held(self) -> bool:
        if self._connection is None:
            return False
        try:
            held = await self._connection.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objsubid = 1 AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = :id"),
                {"id": self._lock_id})
            await self._connection.commit()
        except (OSError, SQLAlchemyError):
            held = 0
        if not held:
            await self._drop()
        return bool(held)

    async def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, SQLAlchemyError):
                await self._connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": self._lock_id})
                await self._connection.commit()
        await self._drop()
        await self._engine.dispose()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await _close(connection)


class FileLeaderLock:
    """An exclusive ``flock`` on a file beside the SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self._fd is not None:
            return await self.still_held()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def still_held(self) -> bool:
        # flock is held until the descriptor closes; a lock file deleted under us is another
        # file for the next clock, so leadership ends with it.
        if self._fd is None:
            return False
        try:
            same = os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            await self.release()
        return same

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class ProcessLeaderLock:
    """In-memory SQLite: the store is this process's own, so this process leads."""

    def __init__(self) -> None:
        self._held = False

    async def try_acquire(self) -> bool:
        self._held = True
        return True

    async def still_held(self) -> bool:
        return self._held

    async def release(self) -> None:
        self._held = False


def leader_lock(url: str) -> LeaderLock:
    """The scheduler lock for the store at `url`."""
    if make_url(url).get_backend_name() in ("postgresql", "postgres"):
        return PostgresLeaderLock(url)
    path = sqlite_file(url)
    return FileLeaderLock(path.with_name(path.name + ".clock.lock")) if path else ProcessLeaderLock()


async def _close(connection: AsyncConnection) -> None:
    with contextlib.suppress(OSError, SQLAlchemyError):
        await connection.close()
