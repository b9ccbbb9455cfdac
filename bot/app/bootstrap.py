"""Assembling a `Runtime` from settings, and serving the web app in-process.

`serve` in production, the demo and the end-to-end tests all go through here, so what the
tests exercise is what production runs; only the URLs differ.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import uvicorn
from starlette.types import ASGIApp

from bot.app.net import tcp_listener
from bot.core.config import Settings
from bot.core.policy import BUNDLED_POLICY, Policy, load_policy, read_only_policy
from bot.intake.catalog import Catalog, load_catalog
from bot.runtime import Runtime, slack_client, utcnow
from bot.store.approvals import Approvals
from bot.store.canary import CanaryStore
from bot.store.db import create_engine_for, migrate, session_factory
from bot.store.repo import Store

__all__ = ["BUNDLED_POLICY", "build_runtime", "serving"]


async def build_runtime(
    settings: Settings,
    *,
    policy: Policy | None = None,
    catalog: Catalog | None = None,
    now: Callable[[], datetime] = utcnow,
) -> Runtime:
    """Migrate the store, load policy and catalog (refusing bad files), build the clients."""
    if policy is None:
        # No policy file configured: read-only, so a forgotten setting can never enable writes.
        policy = load_policy(settings.policy_file) if settings.policy_file else read_only_policy()
    if catalog is None:
        catalog = load_catalog(settings.catalog_file) if settings.catalog_file else Catalog([])
    await migrate(settings.database_url)
    sessions = session_factory(create_engine_for(settings.database_url))
    return Runtime(settings=settings, policy=policy, catalog=catalog, store=Store(sessions),
                   approvals=Approvals(sessions), slack=slack_client(settings), now=now,
                   canaries=CanaryStore(sessions))


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app on this event loop; yields its base URL; stops on exit."""
    sock = tcp_listener(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
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
