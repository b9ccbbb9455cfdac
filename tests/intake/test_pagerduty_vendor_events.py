"""What PagerDuty really sends: every documented v3 event type and recorded deliveries, correctly
signed, is answered 2xx; the incident events the bot acts on are read field by field, the rest
acknowledged and recorded, never refused (a 4xx drops the delivery and, three in a row, disables
the subscription for a day)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.intake.pagerduty import HANDLED_EVENTS
from tests.helpers.pagerduty import (
    DATA_EXAMPLES,
    EVENT_TYPES,
    FULL_EXAMPLES,
    RECORDED,
    WebhookReceiver,
    documented_event,
    signed,
)
from tests.helpers.replay import fixture

SECRET = "whsec-vendor-payloads"
NOW = datetime(2021, 6, 4, 13, 40, tzinfo=UTC)


@pytest.fixture
def receiver() -> WebhookReceiver:
    return WebhookReceiver([SECRET], now=lambda: NOW)


def test_the_fixture_lists_every_documented_event_type() -> None:
    # The docs' table (30 types when vendored); each names a data type with a documented example.
    assert len(EVENT_TYPES) == 30
    assert len({t["event_type"] for t in EVENT_TYPES}) == 30
    assert all(t["data_type"] in DATA_EXAMPLES for t in EVENT_TYPES)
    assert {t["event_type"].split(".")[0] for t in EVENT_TYPES} == {"incident", "service"}


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda t: t["event_type"])
async def test_every_documented_event_type_is_answered_2xx(receiver: WebhookReceiver, kind: dict[str, str]) -> None:
    body, headers = signed(documented_event(kind["event_type"], kind["data_type"]), SECRET)
    response = await receiver.post(body, headers)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["ok"] is True
    assert answer["event_type"] == kind["event_type"]
    assert f"event:{json.loads(body)['event']['id']}" in receiver.seen  # recorded, whatever the type
    if kind["event_type"] in HANDLED_EVENTS:
        assert answer["accepted"]
        [event] = receiver.events
        incident = DATA_EXAMPLES["incident"]
        assert (event.data.id, event.data.title, event.data.status, event.data.urgency) == (
            incident["id"], incident["title"], incident["status"], incident["urgency"])
        assert (event.data.service.id, event.data.service.summary) == ("PF9KMXH", "API Service")
        assert event.data.created_at == datetime(2020, 4, 9, 15, 16, 27, tzinfo=UTC)
    else:
        assert answer["recorded"]
        assert "not acted on" in answer["ignored"]
        assert receiver.events == []


@pytest.mark.parametrize("name", FULL_EXAMPLES)
async def test_the_documented_full_examples_are_answered_2xx(receiver: WebhookReceiver, name: str) -> None:
    payload = fixture("pagerduty", "webhooks", name)
    response = await receiver.post(*signed(payload, SECRET))
    assert response.status_code == 202, response.text
    assert response.json()["ignored"] == f"event type {payload['event']['event_type']}: acknowledged, not acted on"
    assert receiver.events == []


async def test_a_recorded_delivery_verifies_with_pagerdutys_own_signature() -> None:
    # go-pagerduty's test delivery: the body and the header PagerDuty's library verifies, under
    # its test secret. Our verifier must agree with theirs byte for byte.
    recorded = fixture("pagerduty", "deliveries", "go_pagerduty_priority_updated.json")
    receiver = WebhookReceiver([recorded["secret"]], now=lambda: NOW)
    response = await receiver.post(recorded["body"].encode(), {
        "X-PagerDuty-Signature": recorded["signature"], "Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    assert response.json() == {"ok": True, "event_type": "incident.priority_updated",
                               "recorded": "01BWDWL3NYY7LUFPZCC28QUCMK",
                               "ignored": "event type incident.priority_updated: acknowledged, not acted on"}


@pytest.mark.parametrize("name", RECORDED)
async def test_recorded_deliveries_are_answered_2xx(receiver: WebhookReceiver, name: str) -> None:
    raw = json.dumps(fixture("pagerduty", "deliveries", name)).encode()
    response = await receiver.post(*signed(raw, SECRET))
    assert response.status_code == 202, response.text
    event_type = json.loads(raw)["event"]["event_type"]
    if event_type == "incident.triggered":
        [event] = receiver.events
        assert (event.id, event.data.id, event.data.title, event.data.service.id, event.data.service.summary) == (
            "01BZYIL05THJDFF2Y08X9SVMTU", "PFQZPSY", "Test Incident 3", "PA2P440", "pig208")
        assert event.agent is not None
        assert event.agent.summary == "PIG 208"
        assert event.occurred_at == datetime(2021, 6, 4, 13, 35, 29, 781000, tzinfo=UTC)
    else:
        assert receiver.events == []


async def test_an_incident_event_whose_data_is_not_an_incident_is_acknowledged_with_the_reason(
        receiver: WebhookReceiver) -> None:
    # A trigger whose data lacks the service: answered 2xx (a 4xx would drop it for good), said why.
    payload = documented_event("incident.triggered", "incident")
    payload["event"]["data"] = {k: v for k, v in payload["event"]["data"].items() if k != "service"}
    response = await receiver.post(*signed(payload, SECRET))
    assert response.status_code == 202
    assert response.json()["ignored"] == (
        "incident.triggered data is not an incident (event.data.service: Field required)")
    assert receiver.events == []


async def test_an_old_retried_delivery_is_accepted_once(receiver: WebhookReceiver) -> None:
    # PagerDuty retries for 48 hours: a delivery two days old is a retry after our outage.
    old = (NOW - timedelta(hours=47)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body, headers = signed(documented_event("incident.triggered", "incident", occurred_at=old), SECRET)
    first, again = await receiver.post(body, headers), await receiver.post(body, headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["accepted"]
    assert again.json()["duplicate"] == f"event:{json.loads(body)['event']['id']}"
    assert len(receiver.events) == 1


async def test_a_service_event_is_never_read_as_an_incident(receiver: WebhookReceiver) -> None:
    # resource_type says what the event is about, whatever its data happens to hold.
    payload = documented_event("incident.triggered", "incident")
    payload["event"]["resource_type"] = "service"
    response = await receiver.post(*signed(payload, SECRET))
    assert response.status_code == 202
    assert response.json()["ignored"] == "resource type service: acknowledged, not acted on"
    assert receiver.events == []


async def test_a_future_timestamp_is_accepted_and_logged(receiver: WebhookReceiver,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    ahead = (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    response = await receiver.post(*signed(documented_event("incident.acknowledged", "incident",
                                                            occurred_at=ahead), SECRET))
    assert response.status_code == 202
    assert "ahead of our clock" in caplog.text
    assert len(receiver.events) == 1
