"""Slack's requests checked before anything reads them: size, signature, then the body.

Bolt parses the body before it verifies the signature, so an unsigned request with a broken
body (not UTF-8, not JSON, ``payload=[1]``, a timestamp that is not a number) reached code that
raised, and Slack (or an attacker) got a 500 with a traceback. Here the order is: bound the
size, check the timestamp and the v0 signature over the raw bytes, and only then decode and
parse, the way Bolt will (`slack_bolt.request.internals.parse_body`), and check the parsed body
has what the listeners read (`bot.intake.slack_shapes`). Every refusal is a 4xx with a reason;
what passes is safe to hand to Bolt. Pure: the caller passes the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationError
from slack_bolt.context import BoltContext
from slack_bolt.request import payload_utils
from slack_bolt.request.internals import build_context, parse_body

from bot.intake.safejson import BadJson, check_value, loads_bounded
from bot.intake.slack_shapes import check_shape, first_error

MAX_BODY_BYTES = 1024 * 1024  # a modal submission with long text is a few tens of KB
MAX_SKEW_S = 300  # Slack's own recommendation: refuse requests signed more than 5 minutes ago
SLACK_RESPONSE_HOSTS = frozenset({"hooks.slack.com"})
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


def sign_slack(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify_slack(body: bytes, timestamp: str | None, signature: str | None, secret: str,
                 now: float) -> Refusal | None:
    """None when `body` is signed by `secret` within the allowed clock skew."""
    if not secret:
        return Refusal(503, "Slack signing secret not configured: refusing unsigned requests")
    if not timestamp or not _TIMESTAMP.fullmatch(timestamp):
        return Refusal(401, "missing or non-numeric X-Slack-Request-Timestamp")
    if abs(now - int(timestamp)) > MAX_SKEW_S:
        return Refusal(401, "X-Slack-Request-Timestamp is more than 5 minutes from our clock")
    if not signature or not _SIGNATURE.fullmatch(signature):
        return Refusal(401, "missing or malformed X-Slack-Signature")
    if not hmac.compare_digest(sign_slack(secret, timestamp, body), signature):
        return Refusal(401, "invalid X-Slack-Signature")
    return None


def read_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The signed body as Bolt will read it; `ValueError` saying why when it cannot be."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson(f"body is not UTF-8 (byte {exc.start})") from exc
    if "\x00" in text:
        raise ValueError("body contains a NUL character")
    # Parse exactly as Bolt does (its JSON-or-form rule), but through the bounded reader, so a
    # body Bolt would choke on is refused here instead.
    is_json = (content_type is not None and content_type == "application/json") or text.startswith("{")
    if is_json:
        parsed: Any = loads_bounded(text)
    else:
        fields = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=200)
        check_value([value for pair in fields for value in pair])
        payload = dict(fields).get("payload") if "payload" in text else None
        parsed = loads_bounded(payload) if payload is not None else parse_body(text, content_type)
    if not isinstance(parsed, dict):
        raise ValueError(f"body is a JSON {type(parsed).__name__}, not an object")
    return parsed


# What Bolt's listener matchers compare to strings or patterns (a number there is a TypeError).
_TEXT_KEYS = ("type", "callback_id", "action_id", "command", "response_url", "trigger_id")
# What Bolt reads as an object with an ``id`` (or as an id string) to build its context.
_ID_HOLDERS = ("user", "team", "channel", "enterprise")
_OBJECTS = ("event", "view", "message", "container", "item", "previous_message", "workflow_step")
_CONTEXT_IDS = ("enterprise_id", "team_id", "user_id", "actor_enterprise_id", "actor_team_id",
                "actor_user_id", "channel_id", "thread_ts", "response_url")
_BOLT_READERS = (payload_utils.to_options, payload_utils.to_shortcut, payload_utils.to_action,
                 payload_utils.to_view, payload_utils.to_command, payload_utils.to_event,
                 payload_utils.to_message, payload_utils.to_step)


def _check_text(where: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{where}: must be a string")


def check_bolt_envelope(body: dict[str, Any]) -> None:
    """Raise `ValueError` when Bolt's own routing would trip over the body. Bolt indexes into
    the envelope (``body["actions"][0]``, ``"id" in body["user"]``) and matches listeners by
    comparing strings; every part it reads that way must have the type it assumes. Then Bolt's
    own readers run once here, so whatever they would raise is a 400 now, not a 500 later."""
    for key in _TEXT_KEYS:
        if key in body:
            _check_text(key, body[key])
    for key in _ID_HOLDERS:
        holder = body.get(key)
        if holder is not None and not isinstance(holder, str | dict):
            raise ValueError(f"{key}: must be an object or an id")
        if isinstance(holder, dict) and "id" in holder:
            _check_text(f"{key}.id", holder["id"])
    for key in _OBJECTS:
        if key in body and not isinstance(body[key], dict):
            raise ValueError(f"{key}: must be an object")
    # Only what Bolt matches events on: other fields differ by event type (a `channel_created`
    # event's `channel` is an object), and the app_mention the bot reads is checked by its model.
    for key in ("type", "subtype"):
        if key in body.get("event", {}) and body["event"][key] is not None:
            _check_text(f"event.{key}", body["event"][key])
    view = body.get("view", {})
    for key in ("callback_id", "type"):
        if key in view:
            _check_text(f"view.{key}", view[key])
    if "actions" in body or body.get("type") == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
            raise ValueError("actions: must be a non-empty list of objects")
        for key in ("action_id", "block_id", "type"):
            if key in actions[0]:
                _check_text(f"actions.0.{key}", actions[0][key])
        if body.get("type") == "block_actions" and "action_id" not in actions[0]:
            raise ValueError("actions.0.action_id: missing")
    for key in ("authorizations", "response_urls"):
        items = body.get(key)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, dict) for i in items)):
            raise ValueError(f"{key}: must be a list of objects")
    try:
        context = build_context(BoltContext(), body)
        for read in _BOLT_READERS:
            read(body)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"not a Slack request Bolt can route ({type(exc).__name__}: {exc})") from exc
    for key in _CONTEXT_IDS:
        if context.get(key) is not None:
            _check_text(key, context[key])


def check_response_urls(body: dict[str, Any], hosts: frozenset[str]) -> None:
    """Bolt's ``respond`` posts to the request's response URL: only to Slack's (`hosts`), so no
    request can point the bot at another address."""
    urls = [body["response_url"]] if "response_url" in body else []
    urls += [item.get("response_url") for item in body.get("response_urls") or [] if "response_url" in item]
    for url in urls:
        _check_text("response_url", url)
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or parts.hostname not in hosts:
            raise ValueError("response_url: not a Slack response URL")


def response_hosts(api_base_url: str) -> frozenset[str]:
    """Slack's response URL hosts; a Slack API base elsewhere (a proxy, the sandbox) serves them too."""
    return SLACK_RESPONSE_HOSTS | {urlsplit(api_base_url).hostname or "hooks.slack.com"}


def check_payload(parsed: dict[str, Any], hosts: frozenset[str] = SLACK_RESPONSE_HOSTS) -> None:
    """Raise `ValueError` (a `ValidationError` is one) when a parsed request is not one Bolt and
    the listeners can read: the checks every Slack request passes, over HTTP (`check_request`)
    and over Socket Mode (`bot.intake.socket_gate`)."""
    check_bolt_envelope(parsed)
    check_response_urls(parsed, hosts)
    check_shape(parsed)


def check_request(body: bytes, headers: dict[str, str], *, secret: str, now: float,
                  response_hosts: frozenset[str] = SLACK_RESPONSE_HOSTS) -> Refusal | None:
    """None when the request may go on to Bolt; otherwise the 4xx (or 503) to answer."""
    if len(body) > MAX_BODY_BYTES:
        return Refusal(413, f"body larger than {MAX_BODY_BYTES} bytes")
    refused = verify_slack(body, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature"),
                           secret, now)
    if refused is not None:
        return refused
    # Nothing in the body is read before this line.
    try:
        check_payload(read_body(body, headers.get("content-type")), response_hosts)
    except (ValueError, ValidationError, UnicodeError) as exc:
        return Refusal(400, f"malformed Slack request: {first_error(exc)}")
    return None
