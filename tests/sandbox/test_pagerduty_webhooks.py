"""The sandbox's PagerDuty sender: v3 webhook bodies, stable delivery ids, signatures, rotation."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.intake.signing import parse_signatures, sign_pagerduty, verify_pagerduty
from sandbox.pagerduty import DEFAULT_WEBHOOK_SECRET, build_webhook, send_webhook
from sandbox.server import DEFAULT_SECRETS
from tests.helpers.scenarios import checkout, pagerduty_world

INCIDENT = "Q1CHK5XX"





DATA_KEYS = {"id", "type", "self", "html_url", "number", "status", "incident_key", "created_at", "title",
             "service", "assignees", "escalation_policy", "teams", "priority", "urgency",
             "conference_bridge", "resolve_reason"}


def test_webhook_body_follows_v3_and_is_signed() -> None:
    body, headers = build_webhook(checkout())
    event = json.loads(body)["event"]
    assert set(event) == {"id", "event_type", "resource_type", "occurred_at", "agent", "client", "data"}
    assert (event["event_type"], event["resource_type"]) == ("incident.triggered", "incident")
    assert event["occurred_at"] == "2026-05-12T14:01:00.000Z"
    data = event["data"]
    assert set(data) == DATA_KEYS
    assert (data["id"], data["type"], data["status"], data["urgency"]) == (INCIDENT, "incident", "triggered",
                                                                          "high")
    assert data["service"]["id"] == "PSVCCHK"
    assert set(data["service"]) == {"id", "summary", "type", "self", "html_url"}
    assert headers["User-Agent"] == "PagerDuty-Webhook/V3.0"
    assert headers["Content-Type"].startswith("application/json")
    assert headers["X-PagerDuty-Signature"] == sign_pagerduty(DEFAULT_WEBHOOK_SECRET, body)
    sandbox_secret = DEFAULT_SECRETS["pagerduty_webhook_secret"]
    assert verify_pagerduty(body, headers["X-PagerDuty-Signature"], [sandbox_secret])


def test_webhook_ids_are_stable_across_redeliveries_and_distinct_per_event() -> None:
    first, again = build_webhook(checkout()), build_webhook(checkout())
    assert first == again
    resolved_body, resolved = build_webhook(checkout(), "incident.resolved")
    assert resolved["X-Webhook-Id"] != first[1]["X-Webhook-Id"]
    assert json.loads(resolved_body)["event"]["data"]["status"] == "resolved"
    chosen_body, _ = build_webhook(checkout(), event_id="01EVENT")
    assert json.loads(chosen_body)["event"]["id"] == "01EVENT"


def test_webhook_needs_an_incident_and_a_known_event_type() -> None:
    with pytest.raises(ValueError, match="no PagerDuty incident"):
        build_webhook(pagerduty_world(incident_id=None))
    with pytest.raises(ValueError, match="unsupported webhook event type"):
        build_webhook(checkout(), "incident.exploded")


def test_webhook_signed_during_rotation_carries_both_signatures() -> None:
    body, headers = build_webhook(checkout(), secret=["old-secret", "new-secret"])
    header = headers["X-PagerDuty-Signature"]
    assert len(parse_signatures(header)) == 2
    assert verify_pagerduty(body, header, ["old-secret"])
    assert verify_pagerduty(body, header, ["new-secret"])
    assert not verify_pagerduty(body, header, ["other-secret"])


@pytest.mark.asyncio
async def test_send_webhook_posts_the_raw_signed_body() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def receiver(request: Request) -> JSONResponse:
        raw = await request.body()
        received.append((raw, dict(request.headers)))
        ok = verify_pagerduty(raw, request.headers.get("x-pagerduty-signature"), [DEFAULT_WEBHOOK_SECRET])
        return JSONResponse({"ok": ok}, status_code=202 if ok else 401)

    app = Starlette(routes=[Route("/webhooks/pagerduty", receiver, methods=["POST"])])
    body, headers = build_webhook(checkout())
    response = await send_webhook("http://bot.test/webhooks/pagerduty", body, headers,
                                  transport=httpx.ASGITransport(app=app))
    assert response.status_code == 202
    [(raw, seen)] = received
    assert raw == body
    assert seen["x-webhook-id"] == headers["X-Webhook-Id"]
    assert seen["user-agent"] == "PagerDuty-Webhook/V3.0"

    tampered = body.replace(b'"high"', b'"low"')
    assert (await send_webhook("http://bot.test/webhooks/pagerduty", tampered, headers,
                               transport=httpx.ASGITransport(app=app))).status_code == 401
