"""What a running bot holds: settings, policy, catalog, store, Slack client, clock, tasks.

One `Runtime` per process, passed explicitly to the flows (no global app object mutated per
request). Background work (drafting after an ack, publishing, refreshing) is spawned here so it
is tracked, its errors are logged, and tests and the demo can wait until the bot is idle.

With the worker started (`start_worker`: `serve`, the demo, the end-to-end harness) background
work runs on a worker thread's event loop, never on the loop that acknowledges webhooks and Slack
requests: that loop only verifies, dedupes and answers. The store's sessions are per loop
(`bot.store.loops.LoopSessions`), the Slack client opens a connection per call, and a brief's
connectors are built inside its own work, so the same objects serve both loops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
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
from bot.core.worker_loop import WorkerLoop
from bot.draft.drafter import Drafter, OfflineDrafter
from bot.gather.connectors import Connectors
from bot.gather.tools import ToolRunner
from bot.intake.catalog import Catalog
from bot.store.approvals import Approvals
from bot.store.audit import StoreAudit
from bot.store.canary import CanaryStore
from bot.store.loops import LoopSessions
from bot.store.repo import Store

log = logging.getLogger("incident_brief")

Background = asyncio.Task[Any] | concurrent.futures.Future[Any]


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
    tasks: set[Background] = field(default_factory=set)
    worker: WorkerLoop | None = None
    _tasks_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    def start_worker(self) -> bool:
        """Run background work on a worker loop from now on. Not with an in-memory SQLite store
        (a second loop's engine would be a second, empty database): then it stays on this loop."""
        sessions = self.store.sessions
        if self.worker is not None:
            return True
        if not isinstance(sessions, LoopSessions) or not sessions.shareable:
            log.info("background work stays on the serving loop: the store cannot be shared between loops")
            return False
        self.worker = WorkerLoop.start()
        return True

    async def stop_worker(self, grace_s: float) -> None:
        """Wait up to `grace_s` for background work, cancel the rest, close the worker loop's
        store engine and stop its thread. Work spawned afterwards runs on the caller's loop."""
        worker, self.worker = self.worker, None
        if worker is None:
            return
        sessions = self.store.sessions
        await worker.stop(grace_s, before_close=sessions.dispose_loop if isinstance(sessions, LoopSessions) else None)

    def spawn(self, work: Coroutine[Any, Any, Any], name: str = "background") -> Background:
        """Start `work` in the background: on the worker loop when it runs, else on this loop."""
        job: Background
        if self.worker is not None and self.worker.running:
            job = self.worker.submit(work, name=name)
        else:
            job = asyncio.get_running_loop().create_task(work, name=name)
        with self._tasks_lock:
            self.tasks.add(job)
        # A worker's future completes on the worker thread: the callback only logs and discards.
        job.add_done_callback(lambda done: self._finished(done, name))
        return job

    def _finished(self, job: Background, name: str) -> None:
        with self._tasks_lock:
            self.tasks.discard(job)
        if job.cancelled():
            return
        exc = job.exception()
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            log.error("background task %s failed: %r", name, exc, exc_info=exc)

    def pending(self) -> list[Background]:
        with self._tasks_lock:
            return list(self.tasks)

    async def idle(self, timeout: float = 60.0) -> None:
        """Wait until no background work is left (tests and the demo), wherever it runs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while jobs := self.pending():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(jobs)} background tasks still running")
            waits = [asyncio.wrap_future(job) if isinstance(job, concurrent.futures.Future) else job for job in jobs]
            await asyncio.wait(waits, timeout=remaining)
            # The done callbacks that discard a finished job may not have run yet: give them a turn.
            await asyncio.sleep(0)
