"""What a running bot holds: settings, policy, catalog, store, Slack client, clock, tasks.

One `Runtime` per process, passed explicitly to the flows (no global app object mutated per
request). Background work (drafting after an ack) is spawned here so it is tracked, its
errors are logged, and tests and the demo can wait until the bot is idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.config import Settings
from bot.core.policy import TIMED_SOURCES, Policy
from bot.draft.drafter import Drafter, OfflineDrafter
from bot.gather.connectors import Connectors
from bot.gather.tools import ToolRunner
from bot.intake.catalog import Catalog
from bot.store.approvals import Approvals
from bot.store.audit import StoreAudit
from bot.store.canary import CanaryStore
from bot.store.repo import Store

log = logging.getLogger("incident_brief")


def utcnow() -> datetime:
    return datetime.now(UTC)


def slack_client(settings: Settings) -> AsyncWebClient:
    """The Web API client, pointed at Slack or the sandbox, retrying 429 (Retry-After) and 5xx."""
    client = AsyncWebClient(token=settings.slack.bot_token.get_secret_value() or None,
                            base_url=settings.slack.api_base_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))
    return client


@dataclass
class Runtime:
    settings: Settings
    policy: Policy
    catalog: Catalog
    store: Store
    approvals: Approvals
    slack: AsyncWebClient
    canaries: CanaryStore  # which canary models were switched off: shared by every replica
    now: Callable[[], datetime] = utcnow
    drafter: Callable[[], Drafter] = OfflineDrafter
    connectors: Callable[[], Connectors] | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def new_connectors(self) -> Connectors:
        return self.connectors() if self.connectors else Connectors.from_settings(self.settings)

    def runner(self, *, brief_key: str | None, actor: str | None) -> ToolRunner:
        return ToolRunner(policy=self.policy, audit=StoreAudit(self.store), brief_key=brief_key,
                          actor=actor, timeout_s=self.settings.source_timeout_s,
                          source_timeouts=self.source_timeouts(),
                          catalog_projects=self.catalog.jira_projects())

    def source_timeouts(self) -> dict[str, float]:
        """Each source's timeout: the policy's `timing.source_timeout_s`, fed by the
        `IB_SOURCE_TIMEOUT_S` setting where the policy names no default."""
        fallback = self.settings.source_timeout_s
        return {source: self.policy.timing.timeout_for(source, fallback) for source in TIMED_SOURCES}

    def jira_projects(self) -> list[str]:
        """Where a ticket may be filed: the policy's `jira.allowed_projects`, else the catalog's."""
        return self.policy.jira_projects(self.catalog.jira_projects())

    def spawn(self, work: Coroutine[Any, Any, Any], name: str = "background") -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s failed: %r", task.get_name(), exc, exc_info=exc)

    async def idle(self, timeout: float = 60.0) -> None:
        """Wait until no background work is left (tests and the demo)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.tasks)} background tasks still running")
            await asyncio.wait(set(self.tasks), timeout=remaining)
