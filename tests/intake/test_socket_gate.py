"""The Socket Mode gate, pure: what an envelope must be before the SDK or Bolt reads it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from bot.intake.socket_gate import MAX_ENVELOPE_BYTES, Accepted, Refused, check_envelope
from sandbox import slack_sender
from sandbox.slack_socket import envelope


def _mention(**event: Any) -> dict[str, Any]:
    body = json.loads(slack_sender.app_mention_body(channel="C0INCCHK", user="U0ONCALL1", text="<@UBRIEFBOT> brief"))
    body["event"].update(event)
    return body


def _click() -> dict[str, Any]:
    form = slack_sender.block_actions_body(user="U1", channel="C1", message_ts="1.000001", action_id="ticket_create",
                                           value=json.dumps({"incident_key": "pd:Q1", "brief_version": 1}))
    return dict(json.loads(parse_qs(form)["payload"][0]))


def _command(**fields: str) -> dict[str, Any]:
    form = parse_qs(slack_sender.slash_command_body("/brief", "checkout-api", user="U1", channel="C1"))
    return {key: values[0] for key, values in form.items()} | fields


@pytest.mark.parametrize("message", [
    envelope("events_api", _mention(), envelope_id="e-1"),
    envelope("events_api", _mention(), envelope_id="e-2", retry_attempt=2, retry_reason="timeout"),
    envelope("interactive", _click(), envelope_id="i-1"),
    envelope("slash_commands", _command(), envelope_id="c-1"),
    {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}},
    {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "wss-111"}},
], ids=["mention", "retried mention", "click", "command", "hello", "disconnect"])
def test_what_slack_sends_over_the_socket_passes_as_it_came(message: dict[str, Any]) -> None:
    checked = check_envelope(json.dumps(message))
    assert isinstance(checked, Accepted)
    assert checked.message == message


def _deep(depth: int) -> str:
    return '{"envelope_id": "deep-1", "type": "events_api", "payload": {"x": ' + "[" * depth + "]" * depth + "}}"


@pytest.mark.parametrize(("raw", "envelope_id", "why"), [
    (_deep(3000), "deep-1", "nested deeper than"),
    (json.dumps(envelope("events_api", _mention(text="x" * MAX_ENVELOPE_BYTES), envelope_id="big-1")),
     "big-1", "envelope larger than"),
    ('{"envelope_id": "broken-1", "type": "events_api", "payload": {', "broken-1", "not JSON"),
    ("not json at all", None, "not JSON"),
    ('{"envelope_id": "a", "payload": {"envelope_id": "b"', None, "not JSON"),  # two ids: no guess
    ('["envelope_id", "x"]', None, "a JSON list"),
    ('{"envelope_id": "n-1", "type": "events_api", "payload": {"n": 1' + "0" * 400 + "}}", "n-1", "digits"),
    (json.dumps(envelope("events_api", [1, 2], envelope_id="list-1")), "list-1", "payload"),  # type: ignore[arg-type]
    (json.dumps({**envelope("events_api", _mention()), "envelope_id": 7}), None, "envelope_id"),
    (json.dumps(envelope("events_api", _mention(), envelope_id="r-1") | {"retry_attempt": "1"}), "r-1",
     "retry_attempt"),
    (json.dumps(envelope("telepathy", _mention(), envelope_id="t-1")), "t-1", "type"),
    (json.dumps(envelope("events_api", _mention(channel=123), envelope_id="m-1")), "m-1", "Bolt can route"),
    (json.dumps(envelope("events_api", _mention(text=["a"]), envelope_id="m-2")), "m-2", "text"),
    (json.dumps(envelope("events_api", {**_mention(), "type": 5}, envelope_id="m-3")), "m-3", "type"),
    (json.dumps(envelope("interactive", {**_click(), "actions": "click"}, envelope_id="i-2")), "i-2", "actions"),
    (json.dumps(envelope("slash_commands", _command(response_url="https://evil.example/x"), envelope_id="c-2")),
     "c-2", "response_url"),
], ids=["deep", "huge", "broken", "not JSON", "broken, two ids", "a list", "long number", "payload a list",
        "numeric envelope id", "retry count a string", "unknown type", "channel a number", "text a list",
        "event type a number", "actions a string", "response URL elsewhere"])
def test_hostile_envelopes_are_refused_with_a_reason_and_the_id_to_acknowledge(
        raw: str, envelope_id: str | None, why: str) -> None:
    checked = check_envelope(raw)
    assert isinstance(checked, Refused)
    assert why in checked.reason
    assert checked.envelope_id == envelope_id


def test_a_huge_envelope_is_refused_as_too_large() -> None:
    checked = check_envelope(json.dumps(envelope("events_api", _mention(text="é" * (MAX_ENVELOPE_BYTES // 2)))))
    assert isinstance(checked, Refused)
    assert checked.outcome == "too_large", "counted by bytes, not characters"
