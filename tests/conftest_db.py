"""Database fixtures: every store test runs on SQLite (embedded) and PostgreSQL (scale-out).

PostgreSQL tests get a fresh database each, created on 127.0.0.1:5432 (override with
``IB_TEST_POSTGRES``). Without a server they skip on a laptop, but fail under ``CI=true``:
CI must test both stores.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bot.approvals import Approvals
from bot.store.db import create_engine_for, migrate, session_factory
from bot.store.repo import Store

POSTGRES = os.environ.get("IB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(f"{POSTGRES}/postgres", timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true and unreachable at {POSTGRES}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES}: {exc}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    name = f"ib_test_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://{POSTGRES.removeprefix('postgresql://')}/{name}"
    finally:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[object]:
    await migrate(db_url)
    engine = create_engine_for(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def store(sessions: object) -> Store:
    return Store(sessions)  # type: ignore[arg-type]


@pytest.fixture
def approvals(sessions: object) -> Approvals:
    return Approvals(sessions)  # type: ignore[arg-type]
