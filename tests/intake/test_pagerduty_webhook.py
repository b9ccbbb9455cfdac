"""The PagerDuty webhook endpoint: every rejection has a status and a reason; nothing is lost."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from bot.intake.pagerduty import MAX_BODY_BYTES, PagerDutyEvent, PagerDutyWebhook
from bot.intake.signing import sign_pagerduty
from sandbox.pagerduty import build_webhook
from sandbox.scenario import Scenario

SECRET = "whsec-current"
OLD_SECRET = "whsec-previous"


class Receiver:
    def __init__(self, scenario: Scenario) -> None:
        self.seen: set[str] = set()
        self.events: list[PagerDutyEvent] = []
        self.secrets = [SECRET]
        endpoint = PagerDutyWebhook(secrets=lambda: self.secrets, record_delivery=self.record,
                                    on_event=self.handle, spawn=self.spawn, now=lambda: scenario.now)
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


@pytest.fixture
def receiver(checkout: Scenario) -> Receiver:
    return Receiver(checkout)


async def test_a_signed_trigger_is_accepted_and_handed_off(receiver: Receiver, checkout: Scenario) -> None:
    body, headers = build_webhook(checkout, secret=SECRET)
    response = await receiver.post(body, headers)
    assert response.status_code == 202
    assert [e.event_type for e in receiver.events] == ["incident.triggered"]
    assert receiver.events[0].data.id == checkout.alert.incident_id


async def test_rotation_accepts_either_secret_and_several_signatures(receiver: Receiver,
                                                                      checkout: Scenario) -> None:
    receiver.secrets = [SECRET, OLD_SECRET]
    body, headers = build_webhook(checkout, secret=OLD_SECRET)
    assert (await receiver.post(body, headers)).status_code == 202
    receiver.secrets = [SECRET]
    body, headers = build_webhook(checkout, "incident.acknowledged", secret=[OLD_SECRET, SECRET])
    assert (await receiver.post(body, headers)).status_code == 202
    assert len(receiver.events) == 2


@pytest.mark.parametrize("signature", [None, "", "v1=" + "0" * 64, "v2=abc", "garbage"])
async def test_bad_signatures_are_refused_with_a_reason(receiver: Receiver, checkout: Scenario,
                                                        signature: str | None) -> None:
    body, headers = build_webhook(checkout, secret=SECRET)
    headers = {k: v for k, v in headers.items() if k.lower() != "x-pagerduty-signature"}
    if signature is not None:
        headers["X-PagerDuty-Signature"] = signature
    response = await receiver.post(body, headers)
    assert response.status_code == 401
    assert "X-PagerDuty-Signature" in response.json()["error"]
    assert receiver.events == []


async def test_a_tampered_body_is_refused(receiver: Receiver, checkout: Scenario) -> None:
    body, headers = build_webhook(checkout, secret=SECRET)
    tampered = body.replace(b"incident.triggered", b"incident.resolved")
    assert (await receiver.post(tampered, headers)).status_code == 401


async def test_a_replayed_old_delivery_is_refused_as_stale(receiver: Receiver, checkout: Scenario) -> None:
    body, headers = build_webhook(checkout, secret=SECRET, event_id="old-event",
                                  occurred_at=checkout.now - timedelta(hours=3))
    response = await receiver.post(body, headers)
    assert response.status_code == 400
    assert "stale" in response.json()["error"]
    assert receiver.events == []


async def test_oversized_bodies_are_refused_before_verification(receiver: Receiver) -> None:
    body = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"
    response = await receiver.post(body, {"X-PagerDuty-Signature": sign_pagerduty(SECRET, body),
                                          "Content-Type": "application/json"})
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["error"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"event": "x"}',
                                  b'{"event": {"id": "e1", "event_type": "incident.triggered"}}'])
async def test_malformed_bodies_are_refused_with_the_field(receiver: Receiver, body: bytes) -> None:
    response = await receiver.post(body, {"X-PagerDuty-Signature": sign_pagerduty(SECRET, body)})
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed webhook body")
    assert receiver.events == []


async def test_duplicate_deliveries_are_acknowledged_but_handled_once(receiver: Receiver,
                                                                      checkout: Scenario) -> None:
    body, headers = build_webhook(checkout, secret=SECRET)
    responses = [await receiver.post(body, headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [202, 202, 202]
    assert responses[1].json()["duplicate"]
    assert len(receiver.events) == 1


async def test_without_a_configured_secret_nothing_is_accepted(receiver: Receiver, checkout: Scenario) -> None:
    receiver.secrets = []
    body, headers = build_webhook(checkout, secret=SECRET)
    response = await receiver.post(body, headers)
    assert response.status_code == 503
    assert receiver.events == []


async def test_unhandled_event_types_are_acknowledged_and_ignored(receiver: Receiver,
                                                                  checkout: Scenario) -> None:
    body, headers = build_webhook(checkout, secret=SECRET)
    payload = json.loads(body)
    payload["event"]["event_type"] = "incident.annotated"
    raw = json.dumps(payload).encode()
    headers = {**headers, "X-PagerDuty-Signature": sign_pagerduty(SECRET, raw)}
    response = await receiver.post(raw, headers)
    assert response.status_code == 202
    assert "ignored" in response.json()
    assert receiver.events == []
