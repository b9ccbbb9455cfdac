"""Alembic migrations on SQLite and PostgreSQL: up from empty, down and up again, safe when
several processes start at once, reachable from the `alembic` command, and in step with the ORM
tables (autogenerate finds nothing to do)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from bot.store.db import alembic_config, async_url, create_engine_for, migrate
from bot.store.tables import Base

REPO = Path(__file__).resolve().parents[2]
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _run(db_url: str, fn: Any) -> Any:
    """Call `fn(sync_connection)` in a transaction on its own short-lived engine."""
    engine = create_engine_for(db_url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _diff(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _downgrade_to_base(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, "base")


async def test_an_empty_database_migrates_to_head(db_url: str) -> None:
    assert HEAD is not None
    assert await _run(db_url, _tables) == set()
    await migrate(db_url)
    assert await _run(db_url, _tables) == set(Base.metadata.tables) | {"alembic_version"}
    assert await _run(db_url, _current) == HEAD


async def test_the_orm_tables_match_the_migrations(db_url: str) -> None:
    await migrate(db_url)
    assert await _run(db_url, _diff) == []


async def test_down_to_empty_and_up_again(db_url: str) -> None:
    await migrate(db_url)
    await _run(db_url, _downgrade_to_base)
    assert await _run(db_url, _tables) <= {"alembic_version"}
    assert await _run(db_url, _current) is None
    await migrate(db_url)
    assert await _run(db_url, _current) == HEAD
    assert await _run(db_url, _diff) == []


async def test_migrating_again_or_concurrently_in_one_process_is_harmless(db_url: str) -> None:
    await asyncio.gather(*(migrate(db_url) for _ in range(3)))
    await migrate(db_url)
    assert await _run(db_url, _current) == HEAD


_MIGRATE_AT_GO = """
import asyncio, sys, time
from pathlib import Path
from bot.store.db import migrate
url, barrier, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
(barrier / f"ready-{me}").touch()
while not (barrier / "go").exists():  # imports done everywhere: start the race together
    time.sleep(0.002)
asyncio.run(migrate(url))
"""


async def test_processes_starting_together_migrate_once(db_url: str, tmp_path: Path) -> None:
    count = 3
    processes = [await asyncio.create_subprocess_exec(sys.executable, "-c", _MIGRATE_AT_GO, db_url,
                                                      str(tmp_path), str(n), cwd=REPO,
                                                      stderr=asyncio.subprocess.PIPE)
                 for n in range(count)]
    async with asyncio.timeout(60):
        while len(list(tmp_path.glob("ready-*"))) < count:
            await asyncio.sleep(0.01)
    (tmp_path / "go").touch()
    outcomes: list[tuple[int | None, str]] = []
    for process in processes:
        _, err = await process.communicate()  # reads stderr while waiting: a full pipe cannot stall it
        outcomes.append((process.returncode, err.decode()))
    assert len(outcomes) == count
    assert [(rc, err) for rc, err in outcomes if rc != 0] == []
    assert await _run(db_url, _current) == HEAD
    assert await _run(db_url, _diff) == []


async def _alembic(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await process.communicate())[0].decode()
    assert process.returncode == 0, output
    return output


async def test_the_alembic_command_migrates_and_finds_no_pending_changes(db_url: str) -> None:
    await _alembic("-x", f"url={db_url}", "upgrade", "head")
    assert await _run(db_url, _current) == HEAD
    assert "No new upgrade operations detected" in await _alembic("-x", f"url={db_url}", "check")


async def test_one_live_approval_per_idempotency_key_is_enforced_by_the_schema(db_url: str) -> None:
    """The partial unique index the migration creates: finished proposals may repeat a key,
    live ones may not."""
    await migrate(db_url)
    insert = text("INSERT INTO approvals (id, incident_key, brief_version, tool, proposal, approvers,"
                  " idempotency_key, state, revision, created_at, updated_at) VALUES (:id, 'pd:Q1', 1,"
                  " 'jira.create_issue', '{}', '[]', 'ib-1', :state, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")

    def add(connection: Connection, rows: list[tuple[str, str]]) -> None:
        for row_id, state in rows:
            connection.execute(insert, {"id": row_id, "state": state})

    await _run(db_url, lambda c: add(c, [("a", "rejected"), ("b", "failed"), ("c", "expired"),
                                         ("d", "proposed")]))
    for state in ("proposed", "approved", "executing", "done"):
        with pytest.raises(IntegrityError):
            await _run(db_url, lambda c, state=state: add(c, [(f"x-{state}", state)]))
    with pytest.raises(IntegrityError, match=r"ck_approvals_state|CHECK"):
        await _run(db_url, lambda c: add(c, [("y", "bogus")]))


@pytest.mark.parametrize(("given", "expected"), [
    ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
    ("postgresql+psycopg2://u@h/d", "postgresql+asyncpg://u@h/d"),
])
def test_plain_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        async_url("mysql://u@h/d")


_AT = datetime(2026, 5, 1, 10, tzinfo=UTC)


async def test_0003_keeps_existing_rows_and_gives_the_new_columns_their_defaults(db_url: str) -> None:
    await migrate(db_url, "0002")

    def before(connection: Connection) -> None:
        connection.execute(text(
            "INSERT INTO incidents (key, service, title, status, created_at, updated_at) "
            "VALUES ('pd:OLD', 'checkout-api', 'old', 'resolved', :at, :at)"), {"at": _AT})
        connection.execute(text(
            "INSERT INTO approvals (id, incident_key, brief_version, tool, proposal, approvers, idempotency_key, "
            "state, revision, created_at, updated_at) VALUES ('a1', 'pd:OLD', 1, 'jira.create_issue', '{}', '[]', "
            "'ib-old', 'done', 3, :at, :at)"), {"at": _AT})

    def after(connection: Connection) -> tuple[object, ...]:
        refreshes = connection.execute(text("SELECT human_refreshes FROM incidents WHERE key = 'pd:OLD'")).scalar()
        edited = connection.execute(text("SELECT edited FROM approvals WHERE id = 'a1'")).scalar()
        return refreshes, bool(edited), _tables(connection) >= {"control_events", "canary_states"}

    await _run(db_url, before)
    await migrate(db_url)
    assert await _run(db_url, after) == (0, False, True)
