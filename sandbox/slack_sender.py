"""Slack as the bot sees it from outside: signed event, command and interactivity requests.

Tests and the demo play the people (someone mentions the bot, clicks a button, submits a
modal) by building the exact bodies Slack sends and signing them the way Slack does (v0
HMAC-SHA256 over ``v0:<timestamp>:<body>``), then POSTing them to the bot's endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

from sandbox.slack import APP_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID

VERIFICATION_TOKEN = "sandbox-verification-token"  # deprecated by Slack; still sent in bodies
DEFAULT_RESPONSE_URL = f"https://hooks.slack.com/actions/{TEAM_ID}/0000000001/sandbox"


def signed_headers(secret: str, body: str | bytes, timestamp: int | None = None, *,
                   retry_num: int | None = None) -> dict[str, str]:
    """Slack's request headers for `body`: signature, timestamp and content type.

    ``retry_num`` adds Slack's redelivery headers (``X-Slack-Retry-Num``/``-Reason``)."""
    raw = body.encode() if isinstance(body, str) else body
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + raw
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    json_body = raw.lstrip().startswith(b"{")
    headers = {
        "Content-Type": "application/json" if json_body else "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def _message_ts() -> str:
    return f"{time.time():.6f}"


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}"


def _user(user: str) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID}


def app_mention_body(channel: str, user: str, text: str, thread_ts: str | None = None,
                     event_id: str | None = None, ts: str | None = None) -> str:
    """An Events API ``event_callback`` carrying an ``app_mention`` (JSON)."""
    ts = ts or _message_ts()
    event: dict[str, Any] = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel,
                             "event_ts": ts, "team": TEAM_ID, "client_msg_id": str(uuid.uuid4())}
    if thread_ts:
        event["thread_ts"] = thread_ts
    envelope = {
        "token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
        "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(float(ts)),
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope)


def slash_command_body(command: str = "/brief", text: str = "", *, user: str, channel: str,
                       channel_name: str | None = None, response_url: str | None = None,
                       trigger_id: str | None = None) -> str:
    """A slash command invocation (form-encoded), as Slack posts it."""
    return urlencode({
        "token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN,
        "channel_id": channel, "channel_name": channel_name or channel.lower(), "user_id": user,
        "user_name": user.lower(), "command": command, "text": text, "api_app_id": APP_ID,
        "is_enterprise_install": "false", "response_url": response_url or DEFAULT_RESPONSE_URL,
        "trigger_id": trigger_id or _trigger_id(),
    })


def block_actions_body(user: str, channel: str, message_ts: str, action_id: str, value: str,
                       trigger_id: str | None = None, *, block_id: str = "actions",
                       message: dict[str, Any] | None = None, response_url: str | None = None) -> str:
    """A button click on a message (form ``payload=`` JSON)."""
    payload: dict[str, Any] = {
        "type": "block_actions", "user": _user(user), "api_app_id": APP_ID, "token": VERIFICATION_TOKEN,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id or _trigger_id(), "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None, "is_enterprise_install": False, "channel": {"id": channel, "name": channel.lower()},
        "message": message or {"type": "message", "ts": message_ts, "user": BOT_USER_ID, "text": "",
                               "blocks": []},
        "state": {"values": {}}, "response_url": response_url or DEFAULT_RESPONSE_URL,
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value, "type": "button",
                     "text": {"type": "plain_text", "text": action_id, "emoji": True},
                     "action_ts": _message_ts()}],
    }
    return urlencode({"payload": json.dumps(payload)})


def initial_values(view: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The ``state.values`` Slack sends when a modal is submitted untouched: each input's initial value."""
    values: dict[str, dict[str, dict[str, Any]]] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block.get("element", {})
        kind = element.get("type")
        if kind == "plain_text_input":
            state: dict[str, Any] = {"type": kind, "value": element.get("initial_value")}
        elif kind == "static_select":
            state = {"type": kind, "selected_option": element.get("initial_option")}
        else:
            continue
        values[block["block_id"]] = {element.get("action_id", "value"): state}
    return values


def view_submission_body(user: str, view: dict[str, Any],
                         values: dict[str, dict[str, dict[str, Any]]]) -> str:
    """A modal submitted with `values` as its state (form ``payload=`` JSON)."""
    submitted = {**view, "state": {"values": values}}
    payload: dict[str, Any] = {
        "type": "view_submission", "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "user": _user(user),
        "api_app_id": APP_ID, "token": VERIFICATION_TOKEN, "trigger_id": _trigger_id(), "view": submitted,
        "response_urls": [], "is_enterprise_install": False, "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})


async def post_to_bot(url: str, body: str | bytes, headers: dict[str, str], *,
                      timeout_s: float = 10.0) -> httpx.Response:
    """POST as Slack does (it gives up after 3 s; tests allow more so a slow CI does not flake)."""
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        return await client.post(url, content=body, headers=headers)
