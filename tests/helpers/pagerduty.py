"""PagerDuty's own webhook payloads (tests/fixtures/pagerduty), wrapped and signed as PagerDuty
sends them, and a receiver that runs the real endpoint in-process and keeps what it handed off."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from bot.intake.pagerduty import PagerDutyEvent, PagerDutyWebhook
from bot.intake.signing import sign_pagerduty
from tests.helpers.replay import fixture

DOCUMENTED = fixture("pagerduty", "webhooks", "documented_event_types.json")
EVENT_TYPES: list[dict[str, str]] = DOCUMENTED["event_types"]
DATA_EXAMPLES: dict[str, dict[str, Any]] = DOCUMENTED["data_examples"]
FULL_EXAMPLES = ["documented_incident_priority_updated.json", "documented_service_updated.json"]
RECORDED = ["zulip_triggered_v3.json", "zulip_annotated_v3.json"]


def documented_event(event_type: str, data_type: str, *, occurred_at: str = "2021-06-04T13:35:29.781Z",
                     event_id: str | None = None) -> dict[str, Any]:
    """A v3 delivery of `event_type` in the documented envelope, its ``data`` the documented
    example of `data_type` (PagerDuty's docs give one ``data`` example per data type)."""
    return {"event": {
        "id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, event_type)),
        "event_type": event_type, "resource_type": event_type.split(".", 1)[0],
        "occurred_at": occurred_at, "agent": None, "client": None,
        "data": DATA_EXAMPLES[data_type],
    }}


def signed(payload: dict[str, Any] | bytes, secret: str) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {"Content-Type": "application/json; charset=utf-8", "User-Agent": "PagerDuty-Webhook/V3.0",
                  "X-PagerDuty-Signature": sign_pagerduty(secret, body),
                  "X-Webhook-Id": str(uuid.uuid5(uuid.NAMESPACE_OID, body.decode()))}


class WebhookReceiver:
    """The real endpoint, in-process: deliveries it recorded, events it handed off."""

    def __init__(self, secrets: list[str], now: Callable[[], datetime]) -> None:
        self.seen: set[str] = set()
        self.events: list[PagerDutyEvent] = []
        self.secrets = secrets
        endpoint = PagerDutyWebhook(secrets=lambda: self.secrets, record_delivery=self.record,
                                    on_event=self.handle, spawn=self.spawn, now=now)
        self.app = Starlette(routes=[Route("/webhooks/pagerduty", endpoint.handle, methods=["POST"])])
        self.pending: list[Awaitable[None]] = []

    async def record(self, delivery: str) -> bool:
        first = delivery not in self.seen
        self.seen.add(delivery)
        return first

    async def handle(self, event: PagerDutyEvent) -> None:
        self.events.append(event)

    def spawn(self, work: Awaitable[None]) -> None:
        self.pending.append(work)

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            response = await client.post("/webhooks/pagerduty", content=body, headers=headers)
        for work in self.pending:
            await work
        self.pending.clear()
        return response
