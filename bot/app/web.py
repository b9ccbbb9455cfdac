"""The `web` process: one ASGI app for Slack (events, interactivity, commands), the
PagerDuty webhook, health and metrics.

`/healthz` is liveness (the process answers; restarting it would not help a sick database),
`/readyz` readiness: 503 with the reason while the store cannot take a write
(`bot.store.replicas.health`), so a load balancer sends PagerDuty and Slack to a replica that can.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.core.audit import ALERT_NOT_POSTED, ControlRecord
from bot.core.keys import pagerduty_key
from bot.core.models import Alert
from bot.gather.incident_state import late_trigger_check
from bot.intake.bodies import BadContentLength, BodyTooLarge, read_bounded
from bot.intake.catalog import no_channel_fix
from bot.intake.pagerduty import PagerDutyEvent, PagerDutyWebhook, is_late
from bot.intake.slack_gate import MAX_BODY_BYTES as MAX_SLACK_BODY
from bot.intake.slack_gate import Refusal, check_request, response_hosts
from bot.runtime import Runtime
from bot.slack.handlers import register
from bot.slack.publish import post_status
from bot.slack.storm import after_status, brief_or_join, member_status
from bot.store.replicas.bounded import AckRecorder
from bot.store.replicas.health import StoreHealth
from bot.telemetry import record as telemetry
from bot.telemetry.metrics import registry

log = logging.getLogger("incident_brief.web")
_OUTCOMES = {401: "bad_signature", 413: "too_large", 503: "not_configured"}
SLACK_HEADERS = ("x-slack-request-timestamp", "x-slack-signature", "content-type")

STATUS_LINES = {
    "incident.acknowledged": "Acknowledged",
    "incident.escalated": "Escalated",
    "incident.resolved": "Resolved",
    "incident.reopened": "Reopened",
}


def build_bolt_app(rt: Runtime) -> AsyncApp:
    # The client already carries the bot token (and the retry handlers); Bolt uses it as is.
    app = AsyncApp(client=rt.slack, signing_secret=rt.settings.slack.signing_secret.get_secret_value(),
                   request_verification_enabled=True, process_before_response=False)
    register(app, rt)
    return app


async def on_pagerduty_event(rt: Runtime, event: PagerDutyEvent) -> None:
    incident = event.data
    key = pagerduty_key(incident.id)
    if event.event_type == "incident.triggered":
        if is_late(event, rt.now()) and not await _still_open(rt, event, key):
            return
        service = rt.catalog.by_pagerduty_service(incident.service.id)
        name = service.name if service else incident.service.summary
        channel = (service.slack_channel if service else None) or rt.settings.slack.default_channel
        if not channel:
            await _not_posted(rt, event, name, in_catalog=service is not None)
            return
        alert = Alert(via="pagerduty", title=incident.title or f"{name} incident", service=name,
                      triggered_at=incident.created_at or event.occurred_at, incident_id=incident.id,
                      urgency="low" if incident.urgency == "low" else "high")
        # An alert storm (policy `storms`): one brief per window, the others reply in its thread.
        await brief_or_join(rt, alert, rt.catalog.resolve(name), channel, key=key)
        return
    who = f" by {event.agent.summary}" if event.agent and event.agent.summary else ""
    status = event.event_type.removeprefix("incident.")
    # Deliveries arrive out of order (retries, replicas): only a change that happened after the
    # stored one is applied, so an "acknowledged" delivered after "resolved" changes nothing.
    if not await rt.store.advance_incident_status(key, status, _aware(event.occurred_at)):
        log.info("%s for %s (occurred %s) is older than the stored status or has no incident: not applied",
                 event.event_type, key, event.occurred_at.isoformat())
        return
    line = f"{STATUS_LINES.get(event.event_type, event.event_type)}{who} at {event.occurred_at:%H:%M} UTC"
    if not await member_status(rt, key, status, line):
        await post_status(rt, key, status, line)
    await after_status(rt, key, status)


async def _not_posted(rt: Runtime, event: PagerDutyEvent, service: str, *, in_catalog: bool) -> None:
    """A new incident with no channel to go to (none in the catalog, no default): never silent.
    An error naming the service and the fix, a counter, and an audit row (`control_events`,
    kind ``alert_not_posted``) for the report and the digest; `doctor` and start-up say it before
    any alert comes."""
    incident = event.data
    where = "has no slack_channel in the catalog" if in_catalog else "is not in the catalog"
    fix = no_channel_fix(service)
    log.error("PagerDuty incident %s was not posted: its service %s (%s) %s and IB_SLACK__DEFAULT_CHANNEL is "
              "not set; to fix: %s", incident.id, service, incident.service.id, where, fix)
    telemetry.alert_not_posted("no_channel", incident=pagerduty_key(incident.id), service=service)
    await rt.store.add_control_event(ControlRecord(
        kind=ALERT_NOT_POSTED, subject=service, actor="pagerduty-webhook",
        detail=f"no Slack channel: the service {where} and no default channel is set; {fix}",
        data={"reason": "no_channel", "incident_id": incident.id, "pagerduty_service_id": incident.service.id,
              "event_id": event.id}, at=rt.store.clock()))


async def _still_open(rt: Runtime, event: PagerDutyEvent, key: str) -> bool:
    """A late trigger (a retry after an outage of ours) is briefed only if PagerDuty says the
    incident is still open; the read is audited under the incident's key, the decision logged."""
    connectors = rt.new_connectors()
    try:
        check = await late_trigger_check(rt.runner(brief_key=key, actor="pagerduty-webhook"), connectors,
                                         event.data.id, event.occurred_at)
    finally:
        await connectors.aclose()
    log.info("late trigger %s for %s (occurred %s): %s", event.id, key, event.occurred_at.isoformat(),
             check.reason)
    return check.brief


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def build_web_app(rt: Runtime, bolt: AsyncApp | None = None) -> Starlette:
    handler = AsyncSlackRequestHandler(bolt or build_bolt_app(rt))
    hosts = response_hosts(rt.settings.slack.api_base_url)

    async def slack_events(request: Request) -> Response:
        # Size, signature, then the body (`bot.intake.slack_gate`): Bolt would parse first.
        refused = await _slack_refusal(request)
        if refused is not None:
            telemetry.webhook("slack", _OUTCOMES.get(refused.status, "malformed"))
            return JSONResponse({"ok": False, "error": refused.reason}, status_code=refused.status)
        return await handler.handle(request)

    async def _slack_refusal(request: Request) -> Refusal | None:
        try:
            body = await read_bounded(request, MAX_SLACK_BODY)
        except BodyTooLarge as exc:
            return Refusal(413, str(exc))
        except BadContentLength as exc:
            return Refusal(400, str(exc))
        return check_request(body, {k: request.headers.get(k, "") for k in SLACK_HEADERS},
                             secret=rt.settings.slack.signing_secret.get_secret_value(),
                             now=time.time(),  # Slack signs with the wall clock, as Bolt checks it
                             response_hosts=hosts)

    health = StoreHealth(rt.store.sessions, rt.settings.database_url)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True, "background_tasks": len(rt.tasks)})

    async def readyz(_: Request) -> Response:
        ready = await health.check()
        return JSONResponse({"ok": ready.ok, "store": ready.reason}, status_code=200 if ready.ok else 503)

    # The acknowledgement path's one store write, with bounded waits: a locked or stuck store
    # answers "busy, retry" within about 2 s instead of keeping PagerDuty past its 5 s.
    record_delivery = AckRecorder(rt.store.sessions, rt.settings.database_url, now=rt.store.clock)

    async def metrics(_: Request) -> Response:
        # This replica's own numbers: with several replicas, scrape each (docs/observability.md).
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    webhook = PagerDutyWebhook(
        secrets=lambda: [s.get_secret_value() for s in rt.settings.pagerduty.webhook_secrets],
        record_delivery=record_delivery,
        on_event=lambda event: on_pagerduty_event(rt, event),
        spawn=lambda work: rt.spawn(work, name="pagerduty"),
        now=rt.now,
    )
    async def pagerduty(request: Request) -> Response:
        return await webhook.handle(request)

    app = Starlette(routes=[
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/webhooks/pagerduty", pagerduty, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ])
    app.state.store_health = health  # serve watches it, so a failing store is logged unpolled
    return app
