"""Bounded waits on the store, for the paths that must answer quickly whatever the database does.

The store's normal sessions wait up to 30 s for a SQLite write lock (`SQLITE_BUSY_TIMEOUT_MS`)
and as long as Postgres makes them for a row or table lock: right for background work, wrong
for a webhook PagerDuty drops after 5 s. A bounded transaction caps each wait it can meet:

- getting a connection (a pool used up by background work, a Postgres that does not answer);
- a lock held by another process (SQLite ``busy_timeout``, Postgres ``lock_timeout``);
- the statement itself (Postgres ``statement_timeout``).

Past the bound it raises `StoreBusy`, which the caller turns into "busy, retry" (a 503 that
PagerDuty retries), so nothing is lost: a bounded write either committed or did not happen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from sqlalchemy import make_url, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.errors import StoreBusy
from bot.core.redaction import redact
from bot.store.db import SQLITE_BUSY_TIMEOUT_MS, create_engine_for
from bot.store.tables import WebhookDeliveryRow
from bot.store.upsert import insert_for

Sessions = async_sessionmaker[AsyncSession]

# Two waits of this bound at most (a connection, then the lock or statement): the webhook answers
# within about 2 s, well inside PagerDuty's 5 s, even when the store is stuck.
ACK_WAIT_S = 1.0


def reason_of(exc: BaseException) -> str:
    """One redacted line naming what the database said."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return redact(f"{type(inner).__name__}: {lines[0] if lines else 'no detail'}")[:200]


@contextlib.asynccontextmanager
async def bounded_transaction(sessions: Sessions, wait_s: float = ACK_WAIT_S) -> AsyncIterator[AsyncSession]:
    """A transaction whose every wait is capped at `wait_s`; `StoreBusy` past it."""
    async with sessions() as session:
        try:
            # Only the checkout is cancelled on timeout: nothing has been written yet.
            connection = await asyncio.wait_for(session.connection(), timeout=wait_s)
        except TimeoutError as exc:
            raise StoreBusy(f"no store connection within {wait_s:g} s") from exc
        except (OSError, SQLAlchemyError) as exc:
            raise StoreBusy(reason_of(exc)) from exc
        dialect = connection.dialect.name
        millis = max(1, int(wait_s * 1000))
        try:
            if dialect == "sqlite":
                await session.execute(text(f"PRAGMA busy_timeout={millis}"))
            elif dialect == "postgresql":
                # is_local: the bounds end with this transaction, the pooled connection keeps its own.
                # One round trip for both (the webhook's answer waits for each).
                await session.execute(text("SELECT set_config('lock_timeout', :ms, true), "
                                           "set_config('statement_timeout', :ms, true)"), {"ms": str(millis)})
            try:
                yield session
                await session.commit()
            finally:
                if dialect == "sqlite":  # the connection goes back to the pool with its usual wait
                    with contextlib.suppress(SQLAlchemyError):
                        await session.rollback()
                        await session.execute(text(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"))
                        await session.commit()
        except (OperationalError, DBAPIError, OSError) as exc:
            raise StoreBusy(reason_of(exc)) from exc


class AckRecorder:
    """The webhook's dedupe write for one web process, bounded, in as few round trips as the
    backend allows: the acknowledgement waits on each, and under a storm every await is a turn
    behind the briefs being drafted on the same event loop.

    PostgreSQL: an engine of its own whose connections carry the bounds (``lock_timeout``,
    ``statement_timeout``) and run in autocommit, so the insert is one round trip, no
    BEGIN/SET/COMMIT around it. SQLite: `record_delivery_bounded` (its statements are local calls).
    """

    def __init__(self, sessions: Sessions, url: str, *, now: Callable[[], datetime],
                 wait_s: float = ACK_WAIT_S) -> None:
        self._sessions, self._now, self._wait_s = sessions, now, wait_s
        self._engine: AsyncEngine | None = None
        if make_url(url).get_backend_name() == "postgresql":
            millis = str(max(1, int(wait_s * 1000)))
            self._engine = create_engine_for(
                url, isolation_level="AUTOCOMMIT", pool_size=5, max_overflow=10, pool_timeout=wait_s,
                connect_args={"timeout": wait_s, "server_settings": {"lock_timeout": millis,
                                                                     "statement_timeout": millis}})

    async def __call__(self, delivery_id: str, source: str = "pagerduty") -> bool:
        if self._engine is None:
            return await record_delivery_bounded(self._sessions, delivery_id, now=self._now, source=source,
                                                 wait_s=self._wait_s)
        stmt = postgresql.insert(WebhookDeliveryRow).values(
            source=source, delivery_id=delivery_id, received_at=self._now()).on_conflict_do_nothing()
        try:
            connection = await asyncio.wait_for(self._engine.connect(), timeout=self._wait_s)
        except TimeoutError as exc:
            raise StoreBusy(f"no store connection within {self._wait_s:g} s") from exc
        except (OSError, SQLAlchemyError) as exc:
            raise StoreBusy(reason_of(exc)) from exc
        try:
            result = await connection.execute(stmt)
            return int(getattr(result, "rowcount", 0) or 0) == 1
        except (OperationalError, DBAPIError, OSError) as exc:
            raise StoreBusy(reason_of(exc)) from exc
        finally:
            await connection.close()

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


async def record_delivery_bounded(sessions: Sessions, delivery_id: str, *, now: Callable[[], datetime],
                                  source: str = "pagerduty", wait_s: float = ACK_WAIT_S) -> bool:
    """`Store.record_webhook_delivery` for the acknowledgement path: True the first time, False
    for a duplicate, `StoreBusy` when the store cannot say within the bound (nothing recorded)."""
    async with bounded_transaction(sessions, wait_s) as session:
        stmt = await insert_for(session, WebhookDeliveryRow)
        stmt = stmt.values(source=source, delivery_id=delivery_id, received_at=now())
        result = await session.execute(stmt.on_conflict_do_nothing())
        return int(getattr(result, "rowcount", 0) or 0) == 1
