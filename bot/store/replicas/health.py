"""Is the store able to take this replica's writes right now? What `/readyz` answers.

A store can fail in ways a read never shows: a SQLite file deleted while serving (open
connections keep writing to the unlinked file, and everything is gone at the next start), a
database switched to read-only, a server that stopped answering, a lock held by another
process. So the probe is a real write, committed, under the bounded waits of
`bot.store.replicas.bounded` (about 2 s at most), plus, for a SQLite file, a check that the file the
process opened is still the one at its path. The answer is cached briefly (probes from a load
balancer every second cost one write every `ttl_s`), and a change of state is logged once:
failing with the reason, then recovered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import make_url

from bot.store.replicas.bounded import Sessions, StoreBusy, bounded_transaction
from bot.store.tables import CacheRow
from bot.store.upsert import insert_for

log = logging.getLogger("incident_brief.store.health")

PROBE_TTL = timedelta(minutes=5)  # the probe row outlives a few probes; the cache purge reclaims it


@dataclass(frozen=True)
class Readiness:
    ok: bool
    reason: str  # "ok", or what is wrong, one line


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for Postgres and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or "mode=memory" in str(parsed):
        return None
    return Path(database.removeprefix("file:")).resolve()


class StoreHealth:
    """The cached write probe of one process's store."""

    def __init__(self, sessions: Sessions, url: str, *, ttl_s: float = 2.0, wait_s: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._file = sqlite_file(url)
        # The file the process opened: a file recreated at the same path is a different store.
        self._inode = _inode(self._file) if self._file else None
        self._ttl_s = ttl_s
        self._wait_s = wait_s
        self._monotonic = monotonic
        self._probe_key = f"store-probe:{socket.gethostname()}:{os.getpid()}"[:200]
        self._last: Readiness | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    async def check(self) -> Readiness:
        """The store's readiness, probed at most once per `ttl_s` (concurrent callers share it)."""
        async with self._lock:
            if self._last is not None and self._monotonic() - self._checked_at < self._ttl_s:
                return self._last
            current = await self._probe()
            self._checked_at = self._monotonic()
            self._log_change(current)
            self._last = current
            return current

    async def _probe(self) -> Readiness:
        if self._file is not None:
            inode = _inode(self._file)
            if inode is None:
                return Readiness(False, f"database file {self._file} is missing (deleted while serving?): "
                                        "writes go nowhere")
            if self._inode is not None and inode != self._inode:
                return Readiness(False, f"database file {self._file} was replaced since start-up: restart")
        try:
            async with bounded_transaction(self._sessions, self._wait_s) as session:
                now = datetime.now(UTC)
                stmt = await insert_for(session, CacheRow)
                stmt = stmt.values(key=self._probe_key, value={"probed_at": now.isoformat()}, created_at=now,
                                   expires_at=now + PROBE_TTL)
                await session.execute(stmt.on_conflict_do_update(
                    index_elements=[CacheRow.key],
                    set_={"value": stmt.excluded.value, "created_at": now, "expires_at": now + PROBE_TTL}))
        except StoreBusy as exc:
            return Readiness(False, f"store write failed: {_plain(exc.reason)}")
        return Readiness(True, "ok")

    def _log_change(self, current: Readiness) -> None:
        before = self._last
        if current.ok and before is not None and not before.ok:
            log.warning("store ready again")
        elif not current.ok and (before is None or before.ok or before.reason != current.reason):
            log.error("store not ready: %s", current.reason)


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _plain(reason: str) -> str:
    lowered = reason.lower()
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return f"read-only ({reason})"
    if "locked" in lowered or "lock timeout" in lowered:
        return f"locked by another process ({reason})"
    return reason


async def watch(health: StoreHealth, every_s: float = 30.0) -> None:
    """Probe forever (the web process runs this), so a store that fails is logged even when
    nothing polls `/readyz`."""
    while True:
        await health.check()
        await asyncio.sleep(every_s)
