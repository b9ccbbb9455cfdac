"""``INSERT ... ON CONFLICT`` for whichever backend a session is bound to.

Both SQLite (3.24+) and PostgreSQL speak it, with different SQLAlchemy constructs. Upserts are
how the store stays race-safe without locks: the database decides, in one statement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

Insert = sqlite.Insert | postgresql.Insert


async def insert_for(session: AsyncSession, table: Any) -> Insert:
    """A dialect-specific ``insert(table)`` that supports ``on_conflict_do_*``."""
    connection = await session.connection()
    name = connection.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"no upsert for {name}")
