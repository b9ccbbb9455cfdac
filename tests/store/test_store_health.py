"""The store's readiness probe (`bot.store.replicas.health`) and the bounded waits of the ack path
(`bot.store.replicas.bounded`): a real write, so a deleted, read-only, unreachable or locked store is
seen, said once in the log, and answered within the bound."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import create_engine_for, migrate, session_factory
from bot.store.replicas.bounded import AckRecorder, StoreBusy, record_delivery_bounded
from bot.store.replicas.health import StoreHealth
from bot.store.tables import WebhookDeliveryRow
from tests.helpers.db import Clock
from tests.helpers.locks import sqlite_locked_by_another_process


async def _health(url: str) -> tuple[StoreHealth, AsyncEngine]:
    engine = create_engine_for(url)
    return StoreHealth(session_factory(engine), url, ttl_s=0), engine


async def test_a_healthy_store_is_ready(db_url: str) -> None:
    await migrate(db_url)
    health, engine = await _health(db_url)
    try:
        assert (await health.check()).ok
        assert (await health.check()).reason == "ok"
    finally:
        await engine.dispose()


async def test_a_deleted_sqlite_file_is_not_ready_and_said_once(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bot.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    health, engine = await _health(url)
    try:
        assert (await health.check()).ok
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        caplog.set_level(logging.INFO, logger="incident_brief.store.health")
        first, second = await health.check(), await health.check()
        assert not first.ok
        assert "missing" in first.reason
        assert str(path) in first.reason
        assert second == first
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert "store not ready" in errors[0].getMessage()
        # The same path recreated (an empty file) is another store: still not ready.
        await migrate(url)
        assert "replaced" in (await health.check()).reason
    finally:
        await engine.dispose()


async def test_a_read_only_sqlite_store_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await migrate(f"sqlite+aiosqlite:///{path}")
    url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    health, engine = await _health(url)
    try:
        ready = await health.check()
    finally:
        await engine.dispose()
    assert not ready.ok
    assert "read-only" in ready.reason


@pytest.mark.postgres
async def test_a_read_only_postgres_is_not_ready(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's read-only switch")
    await migrate(db_url)
    database = db_url.rsplit("/", 1)[1]
    admin = create_engine_for(db_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'))
    await admin.dispose()
    health, engine = await _health(db_url)
    try:
        ready = await health.check()
    finally:
        await engine.dispose()
    assert not ready.ok
    assert "read-only" in ready.reason


async def test_an_unreachable_postgres_is_not_ready_within_the_bound() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"  # the discard port: refused
    health, engine = await _health(url)
    try:
        ready = await health.check()
    finally:
        await engine.dispose()
    assert not ready.ok
    assert "store write failed" in ready.reason


async def test_a_locked_sqlite_store_answers_busy_within_the_bound_and_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    engine = create_engine_for(url)
    sessions = session_factory(engine)
    try:
        with sqlite_locked_by_another_process(path):
            started = time.monotonic()
            with pytest.raises(StoreBusy, match="locked"):
                await record_delivery_bounded(sessions, "delivery-1", now=Clock())
            waited = time.monotonic() - started
            health = StoreHealth(sessions, url, ttl_s=0)
            ready = await health.check()
        # The store's usual 30 s wait would keep PagerDuty (5 s) waiting and drop the delivery.
        assert waited < 5.0
        assert not ready.ok
        assert "locked by another process" in ready.reason
        async with sessions() as session:
            assert (await session.scalars(select(WebhookDeliveryRow))).all() == []
        # Released: the same delivery is recorded once, and the connection is back to its usual wait.
        assert await record_delivery_bounded(sessions, "delivery-1", now=Clock())
        assert not await record_delivery_bounded(sessions, "delivery-1", now=Clock())
        async with sessions() as session:
            assert (await session.execute(text("PRAGMA busy_timeout"))).scalar_one() == 30_000
    finally:
        await engine.dispose()


async def test_the_ack_recorder_dedupes_and_answers_busy_within_the_bound_on_a_locked_store(
        db_url: str, tmp_path: Path) -> None:
    await migrate(db_url)
    engine = create_engine_for(db_url)
    recorder = AckRecorder(session_factory(engine), db_url, now=Clock())
    try:
        assert await recorder("delivery-1")
        assert not await recorder("delivery-1")
        started = time.monotonic()
        if db_url.startswith("postgresql"):
            async with engine.connect() as holder:  # another session holds the table, as a migration would
                await holder.execute(text("LOCK TABLE webhook_deliveries IN ACCESS EXCLUSIVE MODE"))
                with pytest.raises(StoreBusy, match=r"lock timeout|statement timeout|canceling"):
                    await recorder("delivery-2")
                await holder.rollback()
        else:
            with sqlite_locked_by_another_process(Path(db_url.split("///", 1)[1])), \
                    pytest.raises(StoreBusy, match="locked"):
                await recorder("delivery-2")
        assert time.monotonic() - started < 5.0
        assert await recorder("delivery-2"), "nothing was recorded by the refused attempt"
    finally:
        await recorder.aclose()
        await engine.dispose()
