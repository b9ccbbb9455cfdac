"""The Slack gate and bounded JSON, pure: the order (signature before body) and each refusal."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode

import pytest

from bot.intake.safejson import MAX_DEPTH, BadJson, loads_bounded
from bot.intake.slack_gate import check_request, sign_slack
from sandbox import slack_sender

SECRET = "slack-signing-secret"
NOW = 1_800_000_000.0


def _signed(body: bytes, *, stamp: int = int(NOW), content_type: str | None = None) -> dict[str, str]:
    kind = content_type or ("application/json" if body.startswith(b"{") else "application/x-www-form-urlencoded")
    return {"x-slack-request-timestamp": str(stamp), "x-slack-signature": sign_slack(SECRET, str(stamp), body),
            "content-type": kind}


@pytest.mark.parametrize(("raw", "why"), [
    (b"[" * 3000 + b"]" * 3000, "nested deeper"),
    (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper"),
    (b"1" * 5000, "digits"),
    (b'"\\ud800"', "unpaired surrogate"),
    (b'{"\\udc00": 1}', "unpaired surrogate"),
    (b"NaN", "not a JSON number"),
    (b"1e999", "out of range"),
    (b"\xff", "not UTF-8"),
    (b"{", "not JSON"),
])
def test_bounded_json_refuses_what_the_bot_cannot_carry(raw: bytes, why: str) -> None:
    with pytest.raises(BadJson, match=why):
        loads_bounded(raw)


def test_bounded_json_reads_ordinary_documents() -> None:
    assert loads_bounded(b'{"a": [1, 2.5, "\\ud83d\\ude00", null, true]}') == {"a": [1, 2.5, "😀", None, True]}


def test_nothing_is_read_before_the_signature() -> None:
    body = b"\xff\xfe not even UTF-8"
    refused = check_request(body, {"content-type": "application/json"}, secret=SECRET, now=NOW)
    assert refused is not None
    assert (refused.status, refused.reason) == (401, "missing or non-numeric X-Slack-Request-Timestamp")
    forged = {**_signed(body), "x-slack-signature": "v0=" + "0" * 64}
    refused = check_request(body, forged, secret=SECRET, now=NOW)
    assert refused is not None
    assert (refused.status, refused.reason) == (401, "invalid X-Slack-Signature")


@pytest.mark.parametrize(("headers", "status", "why"), [
    ({"x-slack-request-timestamp": "soon"}, 401, "non-numeric"),
    ({"x-slack-request-timestamp": "9" * 40}, 401, "non-numeric"),
    ({"x-slack-request-timestamp": str(int(NOW) - 301)}, 401, "5 minutes"),
    ({"x-slack-signature": "v1=abc"}, 401, "malformed X-Slack-Signature"),
])
def test_timestamps_and_signatures_are_checked_without_raising(headers: dict[str, str], status: int,
                                                                 why: str) -> None:
    body = b"{}"
    refused = check_request(body, {**_signed(body), **headers}, secret=SECRET, now=NOW)
    assert refused is not None
    assert refused.status == status
    assert why in refused.reason


def test_without_a_signing_secret_everything_is_refused() -> None:
    refused = check_request(b"{}", _signed(b"{}"), secret="", now=NOW)
    assert refused is not None
    assert refused.status == 503


def _click(**changes: object) -> bytes:
    payload = json.loads(parse_qs(slack_sender.block_actions_body(
        user="U1", channel="C1", message_ts="1.000001", action_id="ticket_create",
        value=json.dumps({"incident_key": "pd:Q1", "brief_version": 1})))["payload"][0])
    payload.update(changes)
    return urlencode({"payload": json.dumps(payload)}).encode()


@pytest.mark.parametrize(("body", "why"), [
    (b"payload=%5B1%5D", "not an object"),
    (b"payload=%7B", "not JSON"),
    (b"payload=%ED%A0%80", "UnicodeDecodeError|utf-8|not UTF-8"),
    (_click(actions=[{"action_id": "ticket_create", "value": "[]"}]), "button value"),
    (_click(actions=[{"action_id": "ticket_create", "value": json.dumps(
        {"incident_key": "pd:Q1", "brief_version": 10**20})}]), "brief_version"),
    (_click(actions=[]), "actions"),
    (_click(actions=[{}]), "action_id"),
    (_click(user=["U1"]), "user"),
    (_click(channel={"id": 5}), "channel.id"),
    (_click(response_url="https://attacker.example/collect"), "response_url"),
    (_click(message="not an object"), "message"),
])
def test_signed_bodies_the_listeners_cannot_read_are_400(body: bytes, why: str) -> None:
    refused = check_request(body, _signed(body), secret=SECRET, now=NOW)
    assert refused is not None, "accepted"
    assert refused.status == 400
    assert refused.reason.startswith("malformed Slack request")
    assert any(word.lower() in refused.reason.lower() for word in why.split("|")), refused.reason


def test_what_slack_sends_passes() -> None:
    for body in (_click(), slack_sender.app_mention_body(channel="C1", user="U1", text="<@UB> help").encode(),
                 slack_sender.slash_command_body(user="U1", channel="C1").encode()):
        assert check_request(body, _signed(body), secret=SECRET, now=NOW) is None
