"""Looking for planted secrets everywhere a run leaves text: every table and column of the
database, captured log text, captured HTTP requests. A leak is the whole secret or any 12+
character piece of it (what a clip would leave)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.tables import Base

PIECE = 12  # the shortest part of a secret that still counts as leaked


def pieces(secret: str, size: int = PIECE) -> set[str]:
    """Every `size`-character window of the secret (and the secret itself)."""
    return {secret} | {secret[i:i + size] for i in range(0, max(len(secret) - size, 0) + 1)}


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets that appear (whole or a 12+ character piece) in `text`."""
    return [secret for secret in secrets if any(piece in text for piece in pieces(secret))]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.dumps(value, default=str, ensure_ascii=False)


async def database_text(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """``{"table.column": all its values joined}`` for every table the store defines."""
    out: dict[str, str] = {}
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            for index, column in enumerate(table.columns):
                out[f"{table.name}.{column.name}"] = "\n".join(_text(row[index]) for row in rows)
    return out
