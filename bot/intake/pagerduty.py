"""PagerDuty v3 webhooks: verify, bound, parse, dedupe, then hand off in the background.

PagerDuty wants a 2xx within 5 s and retries 5xx, 429 and timeouts, so the endpoint answers
as soon as the delivery is checked and recorded; the brief is drafted after the response.
Every rejection says why in the body (PagerDuty shows it in the delivery log).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.intake.signing import verify_pagerduty

MAX_BODY_BYTES = 256 * 1024  # PagerDuty payloads are a few KB; anything near this is not one
# The signature has no timestamp, so a captured delivery could be replayed forever; an event
# older than this is refused (PagerDuty's own retries of a delivery finish well within it).
MAX_EVENT_AGE = timedelta(hours=1)
MAX_CLOCK_SKEW = timedelta(minutes=5)
HANDLED_EVENTS = {"incident.triggered", "incident.acknowledged", "incident.escalated",
                  "incident.resolved", "incident.reopened"}


class PagerDutyService(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    summary: str = ""


class PagerDutyIncident(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    title: str = ""
    status: str = "triggered"
    urgency: str = "high"
    html_url: str | None = None
    created_at: datetime | None = None
    service: PagerDutyService


class PagerDutyAgent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    summary: str | None = None


class PagerDutyEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    event_type: str
    resource_type: str = "incident"
    occurred_at: datetime
    agent: PagerDutyAgent | None = None
    data: PagerDutyIncident


EventHandler = Callable[[PagerDutyEvent], Coroutine[Any, Any, None]]
DeliveryRecorder = Callable[[str], Awaitable[bool]]  # True when first seen


def _reject(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


def parse_event(payload: Any) -> PagerDutyEvent:
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), dict):
        raise ValueError("body must be a JSON object with an `event` object")
    return PagerDutyEvent.model_validate(payload["event"])


class PagerDutyWebhook:
    """The endpoint (`handle` is the Starlette route). `on_event` runs in the background after the 202."""

    def __init__(self, *, secrets: Callable[[], list[str]], record_delivery: DeliveryRecorder,
                 on_event: EventHandler, spawn: Callable[[Coroutine[Any, Any, None]], object],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 max_age: timedelta = MAX_EVENT_AGE) -> None:
        self._now = now
        self._max_age = max_age
        self._secrets = secrets
        self._record = record_delivery
        self._on_event = on_event
        self._spawn = spawn

    async def handle(self, request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            return _reject(413, f"body larger than {MAX_BODY_BYTES} bytes")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _reject(413, f"body larger than {MAX_BODY_BYTES} bytes")
        secrets = self._secrets()
        if not secrets:
            return _reject(503, "webhook secret not configured: refusing unsigned deliveries")
        if not verify_pagerduty(body, request.headers.get("x-pagerduty-signature"), secrets):
            return _reject(401, "missing or invalid X-PagerDuty-Signature")
        try:
            event = parse_event(_json(body))
        except (ValueError, ValidationError) as exc:
            return _reject(400, f"malformed webhook body: {_first_error(exc)}")
        age = self._now() - _aware(event.occurred_at)
        if age > self._max_age:
            return _reject(400, f"stale event: occurred {int(age.total_seconds())}s ago "
                                f"(limit {int(self._max_age.total_seconds())}s); replays are refused")
        if age < -MAX_CLOCK_SKEW:
            return _reject(400, "event occurred_at is in the future: check the sender's clock")
        if event.event_type not in HANDLED_EVENTS:
            return JSONResponse({"ok": True, "ignored": f"event type {event.event_type}"}, status_code=202)
        # PagerDuty keeps X-Webhook-Id across retries of one delivery; the event id is the fallback.
        delivery = request.headers.get("x-webhook-id") or f"event:{event.id}"
        if not await self._record(delivery):
            return JSONResponse({"ok": True, "duplicate": delivery}, status_code=202)
        self._spawn(self._on_event(event))
        return JSONResponse({"ok": True, "accepted": event.id}, status_code=202)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at position {exc.pos})") from exc


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"event.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)
