"""Assembling a `Runtime` from settings, and serving the web app in-process.

`serve` in production, the demo and the end-to-end tests all go through here, so what the
tests exercise is what production runs; only the URLs differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp

from bot.app.net import tcp_listener
from bot.core.config import Settings
from bot.core.errors import ConfigError
from bot.core.policy import BUNDLED_POLICY, Policy, load_policy, read_only_policy
from bot.core.redaction import redact
from bot.draft.drafter import Drafter, OfflineDrafter
from bot.gateway.drafter import describe_drafting, llm_drafter
from bot.intake.catalog import Catalog, load_catalog
from bot.runtime import Runtime, slack_client, utcnow
from bot.store.approvals import Approvals
from bot.store.audit import StoreAudit
from bot.store.canary import CanaryStore
from bot.store.db import migrate
from bot.store.loops import LoopSessions
from bot.store.repo import Store

__all__ = ["BUNDLED_POLICY", "build_runtime", "drafter_factory", "serving"]

log = logging.getLogger("incident_brief.bootstrap")


async def build_runtime(
    settings: Settings,
    *,
    policy: Policy | None = None,
    catalog: Catalog | None = None,
    now: Callable[[], datetime] = utcnow,
) -> Runtime:
    """Migrate the store, load policy and catalog (refusing bad files), build the clients and
    the drafter: through the gateway when a model provider is configured, else offline."""
    if policy is None:
        # No policy file configured: read-only, so a forgotten setting can never enable writes.
        policy = load_policy(settings.policy_file) if settings.policy_file else read_only_policy()
    if catalog is None:
        catalog = load_catalog(settings.catalog_file) if settings.catalog_file else Catalog([])
    try:
        await migrate(settings.database_url)
    except (OSError, SQLAlchemyError) as exc:  # unreachable, refused, bad credentials, unwritable
        raise ConfigError(f"IB_DATABASE_URL: cannot open {redact(settings.database_url)}: "
                          f"{redact(_first_line(exc))}") from exc
    # Per-loop engines: `serve` acknowledges on one loop and drafts on a worker loop (bot.runtime).
    sessions = LoopSessions.for_url(settings.database_url)
    store, canaries = Store(sessions), CanaryStore(sessions)
    log.info(describe_drafting(settings.llm))
    return Runtime(settings=settings, policy=policy, catalog=catalog, store=store,
                   approvals=Approvals(sessions), slack=slack_client(settings), now=now, canaries=canaries,
                   drafter=drafter_factory(settings, policy, store, canaries))


def drafter_factory(settings: Settings, policy: Policy, store: Store,
                    canaries: CanaryStore | None = None) -> Callable[[], Drafter]:
    """What `Runtime.drafter` hands the flow for each brief. With a provider configured: one
    model drafter for the process (its gateway spends, caches and audits in `store`, under the
    policy's limits and caps, routing canaries the store has not switched off), which falls back
    to the offline drafter with a note on any model failure. Without one: the offline drafter."""
    if not settings.llm.drafts_with_model():
        return OfflineDrafter
    drafter = llm_drafter(settings.llm, policy, store=store, audit=StoreAudit(store), canary_states=canaries)
    return lambda: drafter


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0]}"[:300]


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app on this event loop; yields its base URL; stops on exit."""
    sock = tcp_listener(host, port)
    # log_config=None: uvicorn logs through the process's root handler (and the redactor).
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                           log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
