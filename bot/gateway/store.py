"""What the gateway needs from the store: a spend ledger and a response cache.

`bot.store.repo.Store` satisfies `GatewayStore`; `MemoryGatewayStore` is the in-process
equivalent for the CLI without a database, tests and the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from bot.core.audit import utcnow


class SpendAmount(Protocol):
    @property
    def usd(self) -> float: ...


class SpendPair(Protocol):
    """The user's day (None for no user) and the workspace's month."""

    @property
    def user_day(self) -> SpendAmount | None: ...

    @property
    def workspace_month(self) -> SpendAmount: ...


class GatewayStore(Protocol):
    async def add_spend(self, *, user: str | None, workspace: str, usd: float, tokens: int) -> SpendPair | None:
        """Add to both totals; the totals after (None when a store cannot say)."""
        ...

    async def spend_totals(self, *, user: str | None, workspace: str, day: date) -> SpendPair: ...

    async def cache_get(self, key: str) -> Any | None: ...

    async def cache_put(self, key: str, value: Any, *, ttl: timedelta) -> None: ...


@dataclass(frozen=True)
class MemorySpend:
    usd: float = 0.0
    tokens: int = 0


@dataclass(frozen=True)
class MemorySpendPair:
    user_day: MemorySpend | None
    workspace_month: MemorySpend


class MemoryGatewayStore:
    """Spend per (user, UTC day) and (workspace, UTC month), and a TTL cache, in dicts."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self.spend: dict[tuple[str, str, str], MemorySpend] = {}
        self.cache: dict[str, tuple[Any, datetime]] = {}

    def _add(self, key: tuple[str, str, str], usd: float, tokens: int) -> None:
        old = self.spend.get(key, MemorySpend())
        self.spend[key] = MemorySpend(old.usd + usd, old.tokens + tokens)

    async def add_spend(self, *, user: str | None, workspace: str, usd: float, tokens: int) -> MemorySpendPair:
        day = self.clock().astimezone(UTC).date()
        if user is not None:
            self._add(("user", user, day.strftime("%Y-%m-%d")), usd, tokens)
        self._add(("workspace", workspace, day.strftime("%Y-%m")), usd, tokens)
        return await self.spend_totals(user=user, workspace=workspace, day=day)

    async def spend_today(self, user: str, day: date) -> MemorySpend:
        return self.spend.get(("user", user, day.strftime("%Y-%m-%d")), MemorySpend())

    async def spend_month(self, workspace: str, month: date) -> MemorySpend:
        return self.spend.get(("workspace", workspace, month.strftime("%Y-%m")), MemorySpend())

    async def spend_totals(self, *, user: str | None, workspace: str, day: date) -> MemorySpendPair:
        return MemorySpendPair(user_day=await self.spend_today(user, day) if user is not None else None,
                               workspace_month=await self.spend_month(workspace, day))

    async def cache_get(self, key: str) -> Any | None:
        found = self.cache.get(key)
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    async def cache_put(self, key: str, value: Any, *, ttl: timedelta) -> None:
        self.cache[key] = (value, self.clock() + ttl)
