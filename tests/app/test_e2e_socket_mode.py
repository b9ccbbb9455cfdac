"""Socket Mode end to end: envelopes over a real WebSocket, through the real ``slack_sdk`` client,
to the bot as `serve` runs it with ``slack.socket_mode`` on (`bot.app.serve._serve`).

The sandbox's Slack hands out the connection URL (``apps.connections.open``, app-level token)
and serves the WebSocket (`sandbox.slack_socket`); the test plays Slack on it. Hostile envelopes
(nested thousands deep, over the size bound, broken JSON, wrong types, a foreign response URL)
are acknowledged and refused with a logged reason, reach no listener, and leave the connection
up; a normal mention then still drafts a brief, and its redelivery is answered once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import uvicorn

from bot.app.serve import _serve
from bot.app.web import build_bolt_app, build_web_app
from bot.intake.socket_gate import MAX_ENVELOPE_BYTES
from sandbox import slack_sender
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from sandbox.slack_socket import SocketModeServer, envelope
from tests.helpers.slack_app import sandboxed_runtime

CHANNEL = "C0INCCHK"  # checkout-api's channel in the scenario's catalog


def _mention(event_id: str, **event: Any) -> dict[str, Any]:
    body = json.loads(slack_sender.app_mention_body(channel=CHANNEL, user="U0ONCALL1",
                                                    text="<@UBRIEFBOT> brief checkout-api", event_id=event_id))
    body["event"].update(event)
    return body


def _hostile() -> list[tuple[str, str | None]]:
    """(the text sent, the envelope id the bot must acknowledge, None when it has none)."""
    command = {key: values[0] for key, values in parse_qs(slack_sender.slash_command_body(
        "/brief", "checkout-api", user="U0ONCALL1", channel=CHANNEL, response_url="https://evil.example/r")).items()}
    deep = "[" * 5000 + "]" * 5000
    return [
        ('{"envelope_id": "h-deep", "type": "events_api", "payload": {"event": ' + deep + "}}", "h-deep"),
        (json.dumps(envelope("events_api", _mention("EvHUGE", text="<@UBRIEFBOT> " + "x" * MAX_ENVELOPE_BYTES),
                             envelope_id="h-huge")), "h-huge"),
        ('{"envelope_id": "h-broken", "type": "events_api", "payload": {"event": {"type": "app_', "h-broken"),
        ("}{ not even close", None),
        (json.dumps(envelope("events_api", [1, 2], envelope_id="h-list")), "h-list"),  # type: ignore[arg-type]
        (json.dumps(envelope("events_api", _mention("EvNUM", channel=42), envelope_id="h-channel")), "h-channel"),
        (json.dumps(envelope("events_api", _mention("EvTXT", text={"a": 1}), envelope_id="h-text")), "h-text"),
        (json.dumps(envelope("interactive", {"type": "block_actions", "actions": "x"}, envelope_id="h-click")),
         "h-click"),
        (json.dumps(envelope("slash_commands", command, envelope_id="h-command")), "h-command"),
        (json.dumps(envelope("events_api", _mention("EvRETRY"), envelope_id="h-retry") | {"retry_attempt": "one"}),
         "h-retry"),
    ]


async def test_socket_mode_envelopes_pass_the_gate_and_a_mention_still_drafts_a_brief(
        checkout: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="incident_brief.socket_mode")
    async with sandboxed_runtime(checkout, tmp_path / "socket.db", socket_mode=True) as (sb, rt):
        assert rt.settings.slack.socket_mode
        socket: SocketModeServer = sb.socket_server  # type: ignore[assignment]
        slack = sb.system("slack")
        bolt = build_bolt_app(rt)
        web = uvicorn.Server(uvicorn.Config(build_web_app(rt, bolt), host="127.0.0.1", port=0, lifespan="off",
                                            log_config=None))
        rt.start_worker()
        serving = asyncio.create_task(_serve(rt, bolt, web))
        try:
            await wait_for(lambda: socket.connections == 1 and web.started, "the Socket Mode connection")
            hostile = _hostile()
            for text, _ in hostile:
                await socket.send(text)
            expected = [envelope_id for _, envelope_id in hostile if envelope_id]
            await wait_for(lambda: all(socket.acknowledged(i) for i in expected), "the refused envelopes' acks")
            refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
            assert len(refusals) == len(hostile), refusals
            assert any("h-deep refused: malformed Socket Mode envelope: nested deeper" in r for r in refusals)
            assert any("h-huge refused: envelope larger than" in r for r in refusals)
            assert any("(no readable id) refused: malformed Socket Mode envelope: not JSON" in r for r in refusals)
            assert any("h-command refused: malformed Slack request: response_url" in r for r in refusals)

            # The connection survived all of it: a mention drafts a brief, its retry is answered once.
            mention = _mention("EvGOOD1")
            await socket.send(envelope("events_api", mention, envelope_id="ok-1"))
            await wait_for(lambda: socket.acknowledged("ok-1"), "the mention's ack")
            brief = await wait_for(lambda: next((m for m in slack.messages if m.channel == CHANNEL and any(
                b.get("type") == "actions" for b in m.blocks)), None), "the brief in Slack")
            await socket.send(envelope("events_api", mention, envelope_id="ok-2", retry_attempt=1,
                                       retry_reason="timeout"))
            await wait_for(lambda: socket.acknowledged("ok-2"), "the retry's ack")
            await rt.idle()
        finally:
            web.should_exit = True
            await serving
            await rt.stop_worker(grace_s=30)
    assert brief.thread_ts == mention["event"]["ts"], "the brief answers in the mention's thread"
    assert {m.thread_ts for m in slack.messages} == {brief.thread_ts}, "nothing hostile reached a listener"
    assert sum(1 for m in slack.messages if any(b.get("type") == "actions" for b in m.blocks)) == 1, \
        "the redelivered mention is answered once"
    assert socket.connections == 1, "no envelope broke the connection"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "nothing raised in the socket handler"
