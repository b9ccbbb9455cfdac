"""The `web` and `clock` processes as coroutines the CLI runs.

`serve` is the same ASGI app the demo and the end-to-end tests drive (`bot.app.web`), behind
uvicorn. With `slack.socket_mode` on, Slack events arrive over Socket Mode instead of HTTP
(no public URL needed); the PagerDuty webhook, health and metrics are still served over HTTP.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import sys

import uvicorn
from prometheus_client import start_http_server
from slack_bolt.async_app import AsyncApp

from bot.app.bootstrap import build_runtime
from bot.app.clock import run_clock
from bot.app.config_report import features
from bot.app.web import build_bolt_app, build_web_app
from bot.core.config import Settings
from bot.core.errors import ConfigError
from bot.intake.catalog import Catalog
from bot.runtime import Runtime
from bot.slack.socket_mode import socket_mode_handler
from bot.store.replicas.health import watch
from bot.telemetry.events import configure_events
from bot.telemetry.metrics import registry
from bot.telemetry.tracing import configure_tracing

log = logging.getLogger("incident_brief.serve")
# How long a stopping replica waits for briefs in flight (Kubernetes allows 30 s by default).
SHUTDOWN_GRACE_S = 20.0
ACK_SWITCH_INTERVAL_S = 0.001


def check_settings(settings: Settings) -> None:
    """Refuse to start half-configured: a bot that cannot verify Slack must not listen."""
    missing = []
    if not settings.slack.bot_token.get_secret_value():
        missing.append("IB_SLACK__BOT_TOKEN")
    if settings.slack.socket_mode:
        if not settings.slack.app_token.get_secret_value():
            missing.append("IB_SLACK__APP_TOKEN (socket mode)")
    elif not settings.slack.signing_secret.get_secret_value():
        missing.append("IB_SLACK__SIGNING_SECRET")
    if missing:
        raise ConfigError("missing settings: " + ", ".join(missing))


def log_gaps(settings: Settings, catalog: Catalog | None = None) -> None:
    """Say at start-up, once, what each feature still lacks (what `incident-brief config` shows),
    among it the catalog's services whose PagerDuty alerts would have no channel to go to."""
    for feature in features(settings, catalog):
        for gap in feature.missing:
            log.warning("%s: %s", feature.name, gap)


# Imported lazily by the flow (the vendors' client libraries, the chart renderer): a second or
# two of imports that, left to the first brief, would block the event loop, and every webhook and
# Slack event waiting on it, in the middle of the first incident (the storm benchmark saw 1.9 s).
WARM_IMPORTS = ("connectors.datadog", "connectors.github", "connectors.confluence", "connectors.jira",
                "connectors.pagerduty", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.dates")


def warm_up() -> None:
    for module in WARM_IMPORTS:
        importlib.import_module(module)


async def serve(rt: Runtime, host: str, port: int) -> None:
    bolt = build_bolt_app(rt)
    web = build_web_app(rt, bolt)
    # log_config=None and the root's level: uvicorn's error and access logs go to the process's
    # root handler at its level, through the redactor, in the configured format (text or JSON).
    server = uvicorn.Server(uvicorn.Config(web, host=host, port=port, lifespan="off", log_config=None,
                                           log_level=logging.getLogger().getEffectiveLevel()))
    # Not a Runtime task (those are the briefs `idle` waits for): it lives as long as the server.
    watcher = asyncio.get_running_loop().create_task(watch(web.state.store_health), name="store-health")
    if rt.start_worker():  # briefs draft on the worker loop: this loop only verifies, dedupes and answers
        # The answering thread is I/O bound: it gives up the GIL at every socket call and waits
        # for it again behind a drafting thread (Datadog deserialisation, analysis, charts) for up
        # to the switch interval each time, 5 ms by default; an ack makes a dozen such calls.
        sys.setswitchinterval(ACK_SWITCH_INTERVAL_S)
    try:
        await _serve(rt, bolt, server)
    finally:
        watcher.cancel()
        # Within a container's stop grace period; a brief cut off mid-way is finished by the
        # clock's `finish_publishing` job (its publish state is claimed, posted or updated).
        await rt.stop_worker(SHUTDOWN_GRACE_S)


async def _serve(rt: Runtime, bolt: AsyncApp, server: uvicorn.Server) -> None:
    if not rt.settings.slack.socket_mode:
        await server.serve()
        return
    # Every envelope passes the same checks as an HTTP request before Bolt sees it (`bot.slack.socket_mode`).
    handler = socket_mode_handler(bolt, rt.settings.slack)
    await handler.connect_async()
    try:
        await server.serve()
    finally:
        await handler.close_async()


def configure_telemetry(settings: Settings) -> None:
    """Traces from the standard OTEL_* variables (off without them) and the step events; with
    ``IB_LOG_FORMAT=json`` the events are JSON too, so every line of the process is one object."""
    configure_tracing()
    events_format = "json" if settings.log_format == "json" else settings.telemetry.log_format
    configure_events(enabled=settings.telemetry.events, log_format=events_format)


async def serve_settings(settings: Settings, host: str, port: int, catalog: Catalog | None = None) -> None:
    check_settings(settings)
    configure_telemetry(settings)
    log_gaps(settings, catalog)
    rt = await build_runtime(settings, catalog=catalog)
    warm_up()
    # Everything imported and built so far lives as long as the process: out of the collector's
    # reach, a full (generation 2) collection, which stops every thread and so every ack, no
    # longer walks it (the storm benchmark measured such pauses at about 330 ms; 50-320 ms after).
    gc.freeze()
    log.info("serving on http://%s:%d (socket mode: %s)", host, port, settings.slack.socket_mode)
    await serve(rt, host, port)


async def clock_settings(settings: Settings) -> None:
    configure_telemetry(settings)
    log_gaps(settings)
    if settings.telemetry.clock_metrics_port is not None:
        start_http_server(settings.telemetry.clock_metrics_port, registry=registry)
        log.info("clock metrics on :%d/metrics", settings.telemetry.clock_metrics_port)
    rt = await build_runtime(settings)
    await run_clock(rt)
