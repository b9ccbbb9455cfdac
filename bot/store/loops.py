"""Store sessions usable from more than one event loop in the process.

An `AsyncEngine`'s pooled connections (aiosqlite's thread, asyncpg's protocol) belong to the
event loop that opened them: used from another loop they fail or, worse, hang. A `serve`
replica acknowledges webhooks on one loop and drafts briefs on a worker loop of its own
(`bot.runtime`), and both reach the store through the same `Store`, `Approvals` and gateway
objects. `LoopSessions` is a session factory that gives each loop its own engine on the same
URL, so those objects need not know which loop they run on.

An in-memory SQLite database exists once per connection pool: a second engine would be a second,
empty database. `shareable` is False then, and the runtime keeps all work on one loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.store.db import _is_memory, async_url, create_engine_for


class LoopSessions(async_sessionmaker[AsyncSession]):
    """`async_sessionmaker` whose bind is the running loop's engine (created on first use).

    `engine` is the one the caller built; it serves the first loop that asks for a session (the
    loop that built the runtime, in practice), so nothing changes for a single-loop process."""

    def __init__(self, engine: AsyncEngine, *, make_engine: Callable[[], AsyncEngine] | None = None,
                 **kw: Any) -> None:
        """`make_engine` builds another loop's engine (default: `create_engine_for` on the same
        URL; a caller that set up its engine with listeners passes how it builds one)."""
        kw.setdefault("expire_on_commit", False)  # as `session_factory`: objects readable after commit
        super().__init__(engine, **kw)
        self._url: URL = engine.url
        self._make_engine = make_engine or (lambda: create_engine_for(self._url))
        self._first: AsyncEngine | None = engine
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # two loops asking at once must not both take the first engine

    @classmethod
    def for_url(cls, url: str | URL) -> LoopSessions:
        return cls(create_engine_for(url))

    @property
    def shareable(self) -> bool:
        """Whether another loop may open its own engine and see the same data."""
        return not _is_memory(async_url(self._url))

    def engine(self) -> AsyncEngine:
        """The running loop's engine (the caller's first engine for the first loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            engine = self._engines.get(loop)
            if engine is None:
                if self._first is not None:
                    engine, self._first = self._first, None
                elif not self.shareable:
                    raise RuntimeError("an in-memory SQLite store cannot be used from a second event loop")
                else:
                    engine = self._make_engine()
                self._engines[loop] = engine
            return engine

    def __call__(self, **local_kw: Any) -> AsyncSession:
        local_kw.setdefault("bind", self.engine())
        return super().__call__(**local_kw)

    async def dispose_loop(self) -> None:
        """Close the running loop's engine (its connections belong to this loop); called by a
        worker loop before it stops."""
        with self._lock:
            engine = self._engines.pop(asyncio.get_running_loop(), None)
        if engine is not None:
            await engine.dispose()
