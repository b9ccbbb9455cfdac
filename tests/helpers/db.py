"""Database fixtures: every store test runs on SQLite (embedded) and PostgreSQL (scale-out).

``db_url`` is an empty database: a SQLite file in the test's tmp dir, or a PostgreSQL database
created for the test on 127.0.0.1:5432 (override the server with ``IB_TEST_POSTGRES``) and
dropped after it. Without a server the PostgreSQL cases skip on a laptop but fail under
``CI=true``: CI must test both stores. ``sessions``, ``store`` and ``approvals`` sit on a
database migrated to head.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.approvals import Approvals
from bot.store.db import create_engine_for, migrate, session_factory
from bot.store.repo import Store

POSTGRES = os.environ.get("IB_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")


async def _admin(statement: str) -> None:
    """Run CREATE/DROP DATABASE (which refuse to run inside a transaction) on the server."""
    engine = create_engine_for(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT",
                               connect_args={"timeout": 3})
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    except (OSError, OperationalError, DBAPIError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true and is unreachable at {POSTGRES}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES}: {exc}")
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    name = f"ib_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await migrate(db_url)
    engine = create_engine_for(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> Store:
    return Store(sessions)


@pytest.fixture
def approvals(sessions: async_sessionmaker[AsyncSession]) -> Approvals:
    return Approvals(sessions)


T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand (TTLs, retention, stuck claims, ordering)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()
