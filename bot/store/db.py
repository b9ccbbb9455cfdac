"""Engines, sessions and migrations for the embedded SQLite store and for PostgreSQL.

    engine = create_engine_for("sqlite+aiosqlite:///incident-brief.db")
    await migrate("sqlite+aiosqlite:///incident-brief.db")
    sessions = session_factory(engine)

Plain ``sqlite://`` and ``postgresql://`` URLs are accepted and mapped to their async drivers.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works; it only has to be the same for every replica running migrations.
_MIGRATION_LOCK_ID = 0x1B_5709E


def async_url(url: str | URL) -> URL:
    """The same database, addressed through the async driver this store uses."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.get_driver_name() != "aiosqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres") and parsed.get_driver_name() != "asyncpg":
        return parsed.set(drivername="postgresql+asyncpg")
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def create_engine_for(url: str | URL, **engine_kwargs: Any) -> AsyncEngine:
    """An async engine. SQLite gets WAL (readers never block the writer), foreign keys on and a
    busy timeout, so concurrent writers queue instead of failing with "database is locked"."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine_kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(parsed, **engine_kwargs)

    engine = create_async_engine(parsed, **engine_kwargs)
    use_wal = not _is_memory(parsed)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if use_wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough under WAL
        finally:
            cursor.close()

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose loaded objects stay readable after commit (no lazy reload on access)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """Alembic's config pointing at the packaged migrations; independent of the working
    directory, so `migrate` works from an installed wheel too."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


# Alembic keeps its migration context in module globals, so two upgrades interleaving on one
# event loop (two apps built in one process) would trample each other: one at a time per loop.
_MIGRATE_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _migrate_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _MIGRATE_LOCKS.get(loop)
    if lock is None:
        lock = _MIGRATE_LOCKS[loop] = asyncio.Lock()
    return lock


def _sqlite_migrations_in_one_transaction(engine: AsyncEngine) -> None:
    """The sqlite3 driver runs DDL outside any transaction; take over and open every transaction
    with BEGIN IMMEDIATE. The whole upgrade is then atomic, and a second process migrating the
    same file waits for the write lock (busy timeout) and finds the schema at head."""

    @event.listens_for(engine.sync_engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together: one migrates, the others wait and then find head.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def migrate(url: str | URL, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (Alembic ``upgrade``) in one transaction; safe
    to call at start-up from every process and replica at once."""
    engine = create_engine_for(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        _sqlite_migrations_in_one_transaction(engine)
    try:
        async with _migrate_lock(), engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()
