"""Slack's Socket Mode envelopes checked before the SDK or Bolt reads them (pure: no I/O).

With Socket Mode the bot opens a WebSocket to Slack with its app-level token (``xapp-``), and
Slack sends each request (an event, an interaction, a slash command) inside an envelope on it:
``{"envelope_id", "type", "payload", "accepts_response_payload", "retry_attempt",
"retry_reason"}``, acknowledged by sending ``{"envelope_id"}`` back. The connection itself is
what authenticates Slack: there is no per-request signature over a WebSocket (Slack signs
nothing there), so `verify_slack` has nothing to check. Everything else the HTTP gate
(`bot.intake.slack_gate`) applies applies here, in the same order: the size bound on the raw
text, the bounded JSON reader (depth, long numbers, lone surrogates), then the payload through
the same `check_payload` (Bolt's routing, response URLs, the listeners' models). A retried
event carries the same ``event_id`` as the first delivery, and the listeners dedupe on it in
the store as they do for HTTP retries, whichever transport or replica receives them.

`check_envelope` never raises: what passes is the message the SDK will read; what does not is
a `Refused` with the reason and, when it can be read, the envelope id to acknowledge, so Slack
does not redeliver what will never be readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.intake.safejson import loads_bounded
from bot.intake.slack_gate import MAX_BODY_BYTES, SLACK_RESPONSE_HOSTS, check_payload
from bot.intake.slack_shapes import first_error

# The envelope wraps what HTTP would carry as the body: the same ceiling for the whole text.
MAX_ENVELOPE_BYTES = MAX_BODY_BYTES
# Messages from Slack about the connection itself; the SDK acts on them (a "disconnect" makes it
# reconnect) and they carry no envelope to acknowledge.
CONTROL_TYPES = frozenset({"hello", "disconnect"})
_ID = r"[0-9A-Za-z_.:-]{1,64}"  # Slack's are UUIDs
_EnvelopeId = Annotated[str, StringConstraints(pattern=rf"^{_ID}$")]
# A key in the JSON text itself: inside a string Slack escapes the quotes (\"envelope_id\"), so
# text a person typed cannot look like one.
_ENVELOPE_ID = re.compile(rf'(?<!\\)"envelope_id"\s*:\s*"({_ID})"')


class SocketEnvelope(BaseModel):
    """A request envelope as the SDK reads it (`slack_sdk.socket_mode.request.SocketModeRequest`)."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["events_api", "interactive", "slash_commands"]
    envelope_id: _EnvelopeId
    payload: dict[str, Any]
    accepts_response_payload: bool | None = None
    retry_attempt: Annotated[int, Field(ge=0, le=100)] | None = None
    retry_reason: Annotated[str, StringConstraints(max_length=100)] | None = None


@dataclass(frozen=True)
class Accepted:
    """What the SDK may read: a request envelope whose payload passed every check, or a control message."""

    message: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    reason: str
    envelope_id: str | None  # None: nothing readable to acknowledge
    outcome: Literal["too_large", "malformed"] = "malformed"


def check_envelope(raw: str | bytes, hosts: frozenset[str] = SLACK_RESPONSE_HOSTS) -> Accepted | Refused:
    """`Accepted` when the message may go on to the SDK (and its payload to Bolt), else `Refused`."""
    # A character is at least one byte: only text that might fit is encoded to be measured.
    if len(raw) > MAX_ENVELOPE_BYTES or _size(raw) > MAX_ENVELOPE_BYTES:
        return Refused(f"envelope larger than {MAX_ENVELOPE_BYTES} bytes", _envelope_id_in(raw), "too_large")
    try:
        message = loads_bounded(raw)
    except ValueError as exc:
        return Refused(f"malformed Socket Mode envelope: {exc}", _envelope_id_in(raw))
    if not isinstance(message, dict):
        return Refused(f"malformed Socket Mode envelope: a JSON {type(message).__name__}, not an object", None)
    envelope_id = _valid_id(message.get("envelope_id"))
    if message.get("type") in CONTROL_TYPES and "envelope_id" not in message:
        return Accepted(message)
    try:
        envelope = SocketEnvelope.model_validate(message)
    except ValidationError as exc:
        return Refused(f"malformed Socket Mode envelope: {first_error(exc)}", envelope_id)
    try:
        check_payload(envelope.payload, hosts)
    except (ValueError, UnicodeError) as exc:
        return Refused(f"malformed Slack request: {first_error(exc)}", envelope.envelope_id)
    return Accepted(message)


def _size(raw: str | bytes) -> int:
    return len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))


def _valid_id(value: Any) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(_ID, value) else None


def _envelope_id_in(raw: str | bytes) -> str | None:
    """The envelope id of a message too large or too broken to parse, when the text names exactly
    one (an id found twice could be a payload's own key: better no acknowledgement than a wrong one)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    found = {match.group(1) for match in _ENVELOPE_ID.finditer(text)}
    return found.pop() if len(found) == 1 else None
