"""The PagerDuty webhook endpoint: every rejection has a status and a reason; nothing is lost."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from bot.intake.pagerduty import MAX_BODY_BYTES, PagerDutyWebhook, parse_envelope
from bot.intake.signing import sign_pagerduty
from sandbox.pagerduty import build_webhook
from sandbox.scenario import Scenario
from tests.helpers.pagerduty import WebhookReceiver as Receiver

SECRET = "whsec-current"
OLD_SECRET = "whsec-previous"


@pytest.fixture
def receiver(checkout: Scenario) -> Receiver:
    return Receiver([SECRET], now=lambda: checkout.now)


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


async def test_an_old_delivery_is_a_retry_accepted_once_never_refused(receiver: Receiver,
                                                                      checkout: Scenario) -> None:
    # PagerDuty retries for 48 hours and drops a delivery answered 4xx: an old one is accepted,
    # and a replay of it is a duplicate (whether it still deserves a brief is the handler's call).
    body, headers = build_webhook(checkout, secret=SECRET, event_id="old-event",
                                  occurred_at=checkout.now - timedelta(hours=30))
    responses = [await receiver.post(body, headers) for _ in range(2)]
    assert [r.status_code for r in responses] == [202, 202]
    assert responses[0].json()["accepted"] == "old-event"
    assert responses[1].json()["duplicate"] == "event:old-event"
    assert [e.id for e in receiver.events] == ["old-event"]


async def test_oversized_bodies_are_refused_before_verification(receiver: Receiver) -> None:
    body = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"
    response = await receiver.post(body, {"X-PagerDuty-Signature": sign_pagerduty(SECRET, body),
                                          "Content-Type": "application/json"})
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["error"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"event": "x"}',
                                  b'{"event": {"event_type": "incident.triggered"}}'])
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


async def test_a_replay_with_fresh_webhook_ids_is_one_event(receiver: Receiver, checkout: Scenario) -> None:
    """Finding 8: X-Webhook-Id is not covered by the signature; a captured delivery re-sent
    with 20 fresh ids is still the same signed event, processed once."""
    body, headers = build_webhook(checkout, "incident.acknowledged", secret=SECRET, event_id="ack-1")
    answers = [await receiver.post(body, {**headers, "X-Webhook-Id": f"forged-{n}"}) for n in range(20)]
    assert [a.status_code for a in answers] == [202] * 20
    assert answers[0].json()["accepted"] == "ack-1"
    assert all(a.json()["duplicate"] == "event:ack-1" for a in answers[1:])
    assert [e.id for e in receiver.events] == ["ack-1"]


@pytest.mark.parametrize("body", [b"[" * 3000 + b"]" * 3000, b'{"event": ' * 3000 + b"1" + b"}" * 3000,
                                  b'{"event": {"id": 1' + b"0" * 5000 + b"}}", b'{"event": {"id": "\\ud800"}}',
                                  b"\xff\xfe{", b'{"event": NaN}'])
async def test_a_signed_hostile_body_is_a_400_with_a_reason(receiver: Receiver, body: bytes) -> None:
    """Finding 9: a body nested 3,000 deep, a 5,000-digit number, a lone surrogate, bytes that
    are not UTF-8, NaN: signed, so read, and each answered 400 saying why, never a 500."""
    response = await receiver.post(body, {"X-PagerDuty-Signature": sign_pagerduty(SECRET, body),
                                          "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("malformed webhook body")


async def test_a_store_that_cannot_record_is_a_503_pagerduty_retries(checkout: Scenario) -> None:
    """Finding 10: with the database down the delivery is neither lost nor a traceback: 503
    (PagerDuty retries 5xx), saying why."""
    async def unavailable(_delivery: str) -> bool:
        raise ConnectionError("database is locked")

    receiver = Receiver([SECRET], now=lambda: checkout.now)
    endpoint = PagerDutyWebhook(secrets=lambda: [SECRET], record_delivery=unavailable, on_event=receiver.handle,
                                spawn=receiver.spawn, now=lambda: checkout.now)
    receiver.app = Starlette(routes=[Route("/webhooks/pagerduty", endpoint.handle, methods=["POST"])])
    body, headers = build_webhook(checkout, secret=SECRET)
    response = await receiver.post(body, headers)
    assert response.status_code == 503
    assert "database" in response.json()["error"]
    assert receiver.events == []


def test_a_delivery_is_masked_whole_before_any_field_is_read(checkout: Scenario) -> None:
    """Issue 13 (found by the fuzz corpus sweep): a secret cut short at the end of a title or an
    agent's name is recognisable only there; embedded later ("Also firing: <title> (PagerDuty
    ...)", "Acknowledged by <agent> at ...") it is not. The envelope is masked field by field first."""
    doc = json.loads(build_webhook(checkout)[0])
    doc["event"]["data"]["title"] = "checkout: key= AKIAZAKPFPF8RFQCL"
    doc["event"]["agent"]["summary"] = "contact ghp_Zq8Lm3Nx7Rt2"
    envelope = parse_envelope(doc)
    text = json.dumps(envelope.model_dump(mode="json"))
    assert "AKIAZAKPFPF8" not in text
    assert "ghp_Zq8Lm3Nx" not in text
    assert "[REDACTED:" in text
    assert envelope.id == doc["event"]["id"]  # ids, types and times are untouched
    assert envelope.event_type == "incident.triggered"
