"""PagerDuty v3 webhooks: verify, bound, read the envelope, dedupe, then hand off in the background.

PagerDuty wants a 2xx within 5 s. It retries timeouts, 5xx and 429 for up to 48 hours, but
treats any other 4xx as permanent: the delivery is dropped, and three drops in a row disable
the subscription for 24 hours, ``incident.triggered`` included. So once a delivery is proven
genuine (the signature, checked first, before anything in the body is read), every event of
every type is acknowledged with a 2xx and recorded: the ones the bot acts on are handed off,
the others (notes, responders, tasks, ``service.*``, types added later) are acknowledged and
recorded, never refused. Only what PagerDuty never sends is refused, and the body says why
(PagerDuty shows it in the delivery log): an unsigned or wrongly signed delivery, an oversized
body, a body that is not a v3 event envelope.

The signature has no timestamp, so replays are met by dedupe on the event's own ``id``, inside
the signed body (kept for longer than PagerDuty's 48 hours of retries), not by refusing old
events: an old delivery is a retry after an outage of ours, and refusing it would drop it for
good. ``X-Webhook-Id`` is not used: the signature does not cover headers, so a captured
delivery re-sent with fresh ids would otherwise be processed again each time. Status changes
are applied in the order they happened (``occurred_at``), not the order they arrived: that is
the handler's job (`bot.store.repo.Store.advance_incident_status`). Whether a late trigger is
still worth a brief is the handler's call (`is_late`): it asks PagerDuty whether the incident
is still open.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.core.errors import StoreBusy
from bot.core.keys import pagerduty_key
from bot.core.redaction import redact_obj
from bot.intake.bodies import BadContentLength, BodyTooLarge, read_bounded
from bot.intake.safejson import BadJson, loads_bounded
from bot.intake.signing import verify_pagerduty
from bot.telemetry import metrics
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import annotate, span

MAX_BODY_BYTES = 256 * 1024  # PagerDuty payloads are a few KB; anything near this is not one
# PagerDuty delivers within seconds; a trigger older than this is a retry queued while we were
# down (PagerDuty retries for 48 h), by which time the incident may well be resolved.
LATE_TRIGGER_AFTER = timedelta(minutes=10)
MAX_CLOCK_SKEW = timedelta(minutes=5)
# The incident events the bot acts on: a trigger drafts a brief, the others update its status.
HANDLED_EVENTS = {"incident.triggered", "incident.acknowledged", "incident.escalated",
                  "incident.resolved", "incident.reopened"}

log = logging.getLogger("incident_brief.intake.pagerduty")


class PagerDutyService(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    summary: str = ""


class PagerDutyIncident(BaseModel):
    """``event.data`` of the incident events (``data.type == "incident"``)."""

    model_config = ConfigDict(extra="ignore")
    id: Annotated[str, StringConstraints(min_length=1, max_length=100)]  # part of the incident key
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


class PagerDutyEnvelope(BaseModel):
    """What every v3 event carries, whatever its type. ``data`` is left as it came: its shape
    depends on the type (an incident, a note, a responder, a service...) and is read only once
    the type says what it is."""

    model_config = ConfigDict(extra="ignore")
    id: Annotated[str, StringConstraints(min_length=1, max_length=100)]  # the dedupe key
    event_type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    resource_type: str = ""
    occurred_at: datetime | None = None
    agent: PagerDutyAgent | None = None
    data: dict[str, Any] | None = None


class PagerDutyEvent(BaseModel):
    """An incident event the bot acts on: the envelope with ``data`` read as the incident."""

    model_config = ConfigDict(extra="ignore")
    id: str
    event_type: str
    resource_type: str = "incident"
    occurred_at: datetime
    agent: PagerDutyAgent | None = None
    data: PagerDutyIncident


EventHandler = Callable[[PagerDutyEvent], Coroutine[Any, Any, None]]
DeliveryRecorder = Callable[[str], Awaitable[bool]]  # True when first seen


def _reject(status: int, reason: str, outcome: str) -> JSONResponse:
    telemetry.webhook("pagerduty", outcome)
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


def parse_envelope(payload: Any) -> PagerDutyEnvelope:
    """The v3 envelope of a delivery, every string in it masked; `ValueError`/`ValidationError`
    when the body is not one.

    Masked here, whole, before anything reads a field: a title or an agent's name is later
    embedded in longer text (a storm member's reply, "Acknowledged by ..."), where a secret cut
    short at the end of the field ("AKIAZAKPFPF8RFQ") is no longer at the end and would pass."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), dict):
        raise ValueError("body must be a JSON object with an `event` object")
    return PagerDutyEnvelope.model_validate(redact_obj(payload["event"]))


def incident_event(envelope: PagerDutyEnvelope) -> PagerDutyEvent:
    """The envelope of an incident event with its ``data`` read as the incident (raises
    `ValidationError` when it is not one)."""
    return PagerDutyEvent.model_validate({
        **envelope.model_dump(exclude={"data", "occurred_at"}),
        "occurred_at": envelope.occurred_at, "data": envelope.data,
    })


def not_acted_on(envelope: PagerDutyEnvelope) -> str | None:
    """Why the bot does not act on this event (None when it does)."""
    if envelope.event_type not in HANDLED_EVENTS:
        return f"event type {envelope.event_type}: acknowledged, not acted on"
    if envelope.resource_type not in ("", "incident"):
        return f"resource type {envelope.resource_type}: acknowledged, not acted on"
    if envelope.occurred_at is None:
        return f"{envelope.event_type} without occurred_at: acknowledged, not acted on"
    return None


def is_late(event: PagerDutyEvent, now: datetime) -> bool:
    """A trigger old enough that the incident may be over: check before briefing it."""
    return now - _aware(event.occurred_at) > LATE_TRIGGER_AFTER


class PagerDutyWebhook:
    """The endpoint (`handle` is the Starlette route). `on_event` runs in the background after the 202."""

    def __init__(self, *, secrets: Callable[[], list[str]], record_delivery: DeliveryRecorder,
                 on_event: EventHandler, spawn: Callable[[Coroutine[Any, Any, None]], object],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._secrets = secrets
        self._record = record_delivery
        self._on_event = on_event
        self._spawn = spawn

    async def handle(self, request: Request) -> JSONResponse:
        with span("intake", **{"intake.via": "pagerduty"}):
            return await self._handle(request)

    async def _handle(self, request: Request) -> JSONResponse:
        try:
            body = await read_bounded(request, MAX_BODY_BYTES)
        except BodyTooLarge as exc:
            return _reject(413, str(exc), "too_large")
        except BadContentLength as exc:
            return _reject(400, str(exc), "malformed")
        secrets = self._secrets()
        if not secrets:
            return _reject(503, "webhook secret not configured: refusing unsigned deliveries", "not_configured")
        # Nothing in the body is read before this line.
        if not verify_pagerduty(body, request.headers.get("x-pagerduty-signature"), secrets):
            return _reject(401, "missing or invalid X-PagerDuty-Signature", "bad_signature")
        try:
            envelope = parse_envelope(_json(body))
        except (ValueError, ValidationError) as exc:
            return _reject(400, f"malformed webhook body: {_first_error(exc)}", "malformed")
        # The event id is inside the signed body; X-Webhook-Id is not signed (see the docstring).
        delivery = f"event:{envelope.id}"
        try:
            first_seen = await self._record(delivery)
        except StoreBusy as exc:
            # Nothing was recorded within the bound: PagerDuty retries a 5xx and the retry is
            # handled afresh, inside its 5 s instead of past it.
            log.warning("pagerduty delivery answered 503, the store is busy: %s", exc.reason)
            response = _reject(503, f"store busy, retry: {exc.reason}", "store_busy")
            response.headers["Retry-After"] = "5"
            return response
        except Exception:  # the store is down: PagerDuty retries a 5xx, so nothing is lost
            log.exception("could not record pagerduty event %s", envelope.id)
            return _reject(503, "could not record the delivery (the bot's database is unavailable); "
                                "retry later", "unavailable")
        if not first_seen:
            return self._ack(envelope, "duplicate", {"duplicate": delivery})
        if envelope.occurred_at is not None and _aware(envelope.occurred_at) - self._now() > MAX_CLOCK_SKEW:
            # Signed, so genuine: PagerDuty's clock and ours disagree. Accepted, and said.
            log.warning("pagerduty event %s occurred_at %s is ahead of our clock: check NTP",
                        envelope.id, envelope.occurred_at.isoformat())
        if (reason := not_acted_on(envelope)) is not None:
            return self._ack(envelope, "recorded", {"recorded": envelope.id, "ignored": reason})
        try:
            event = incident_event(envelope)
        except ValidationError as exc:
            reason = f"{envelope.event_type} data is not an incident ({_first_error(exc)})"
            log.error("pagerduty event %s recorded but not acted on: %s", envelope.id, reason)
            return self._ack(envelope, "unreadable", {"recorded": envelope.id, "ignored": reason})
        annotate(**{"incident.key": pagerduty_key(event.data.id), "event.type": event.event_type})
        self._spawn(self._on_event(event))  # inside the span: the brief's spans are its children
        return self._ack(envelope, "accepted", {"accepted": envelope.id})

    @staticmethod
    def _ack(envelope: PagerDutyEnvelope, outcome: str, detail: dict[str, str]) -> JSONResponse:
        metrics.PAGERDUTY_EVENTS.labels(event_type=envelope.event_type[:64], outcome=outcome).inc()
        telemetry.webhook("pagerduty", outcome)
        log.info("pagerduty event %s (%s): %s", envelope.id, envelope.event_type, outcome)
        return JSONResponse({"ok": True, "event_type": envelope.event_type, **detail}, status_code=202)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json(body: bytes) -> Any:
    try:
        return loads_bounded(body)
    except BadJson as exc:
        raise ValueError(str(exc)) from exc


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"event.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)
