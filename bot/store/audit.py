"""The audit rows: one per tool call, per model call, per brief's citation check and per
control decision (a canary switched off); `StoreAudit` is the `bot.core.audit.AuditSink` over
them, and retention purges them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.audit import BriefCheckRecord, ControlRecord, ModelCallRecord, ToolCallRecord
from bot.store.tables import BriefCheckRow, ControlEventRow, ModelCallRow, ToolCallRow


def rowcount(result: Any) -> int:
    # DML results are CursorResults; the generic Result type the session returns hides it.
    return int(result.rowcount)


class AuditRows:
    """The audit operations of `bot.store.repo.Store` (a base class: one session factory)."""

    sessions: async_sessionmaker[AsyncSession]

    async def add_tool_call(self, record: ToolCallRecord) -> None:
        async with self.sessions() as session, session.begin():
            values = record.model_dump()
            values["args"] = record.model_dump(mode="json")["args"]  # JSON column: no datetimes etc.
            session.add(ToolCallRow(**values))

    async def add_model_call(self, record: ModelCallRecord) -> None:
        async with self.sessions() as session, session.begin():
            session.add(ModelCallRow(**record.model_dump(mode="python")))

    async def add_brief_check(self, record: BriefCheckRecord) -> None:
        async with self.sessions() as session, session.begin():
            session.add(BriefCheckRow(**record.model_dump(mode="python")))

    async def list_brief_checks(self, brief_key: str) -> list[BriefCheckRecord]:
        stmt = select(BriefCheckRow).where(BriefCheckRow.brief_key == brief_key).order_by(BriefCheckRow.id)
        async with self.sessions() as session:
            return [BriefCheckRecord.model_validate(row, from_attributes=True)
                    for row in await session.scalars(stmt)]

    async def list_tool_calls(self, brief_key: str) -> list[ToolCallRecord]:
        stmt = select(ToolCallRow).where(ToolCallRow.brief_key == brief_key).order_by(ToolCallRow.id)
        async with self.sessions() as session:
            return [ToolCallRecord.model_validate(row, from_attributes=True)
                    for row in await session.scalars(stmt)]

    async def list_model_calls(self, brief_key: str) -> list[ModelCallRecord]:
        stmt = select(ModelCallRow).where(ModelCallRow.brief_key == brief_key).order_by(ModelCallRow.id)
        async with self.sessions() as session:
            return [ModelCallRecord.model_validate(row, from_attributes=True)
                    for row in await session.scalars(stmt)]

    async def purge_audit(self, older_than: datetime) -> int:
        """Retention: delete the audit rows (tool calls, model calls, brief checks, control
        events) recorded before `older_than`."""
        async with self.sessions() as session, session.begin():
            deleted = 0
            for row in (ToolCallRow, ModelCallRow, BriefCheckRow, ControlEventRow):
                deleted += rowcount(await session.execute(delete(row).where(row.at < older_than)))
            return deleted

    async def add_control_event(self, record: ControlRecord) -> None:
        async with self.sessions() as session, session.begin():
            session.add(ControlEventRow(**record.model_dump(mode="json", exclude={"at"}), at=record.at))

    async def list_control_events(self, *, since: datetime | None = None) -> list[ControlRecord]:
        stmt = select(ControlEventRow).order_by(ControlEventRow.id)
        if since is not None:
            stmt = stmt.where(ControlEventRow.at >= since)
        async with self.sessions() as session:
            return [ControlRecord.model_validate(row, from_attributes=True) for row in await session.scalars(stmt)]


class StoreAudit:
    """`bot.core.audit.AuditSink` backed by the store: one row per tool call, per model call and per
    brief's citation check."""

    def __init__(self, store: AuditRows) -> None:
        self.store = store

    async def tool_call(self, record: ToolCallRecord) -> None:
        await self.store.add_tool_call(record)

    async def model_call(self, record: ModelCallRecord) -> None:
        await self.store.add_model_call(record)

    async def brief_check(self, record: BriefCheckRecord) -> None:
        await self.store.add_brief_check(record)
