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
from urllib.parse import parse_qsl

from pydantic import ValidationError
from slack_bolt.request.internals import parse_body

from bot.intake.safejson import BadJson, check_value, loads_bounded
from bot.intake.slack_shapes import check_shape, first_error

MAX_BODY_BYTES = 1024 * 1024  # a modal submission with long text is a few tens of KB
MAX_SKEW_S = 300  # Slack's own recommendation: refuse requests signed more than 5 minutes ago
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


def check_request(body: bytes, headers: dict[str, str], *, secret: str, now: float) -> Refusal | None:
    """None when the request may go on to Bolt; otherwise the 4xx (or 503) to answer."""
    if len(body) > MAX_BODY_BYTES:
        return Refusal(413, f"body larger than {MAX_BODY_BYTES} bytes")
    refused = verify_slack(body, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature"),
                           secret, now)
    if refused is not None:
        return refused
    # Nothing in the body is read before this line.
    try:
        parsed = read_body(body, headers.get("content-type"))
        check_shape(parsed)
    except (ValueError, ValidationError, UnicodeError) as exc:
        return Refusal(400, f"malformed Slack request: {first_error(exc)}")
    return None
