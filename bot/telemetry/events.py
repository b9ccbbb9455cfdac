"""One structured event per step of the flow, through the redactor (structlog).

Events go to the ``incident_brief.events`` stdlib logger, so the process's logging set-up
(handlers, the redacting record factory of `bot.core.redaction`) applies to them as to every
other line. The structlog chain redacts each value first (`bot.core.redaction.redact_event`),
adds the level, a UTC timestamp and the current trace and span ids, and renders the event as
one JSON object or one ``key=value`` line (``IB_TELEMETRY__LOG_FORMAT``).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from bot.core.redaction import redact_event
from bot.telemetry.tracing import trace_ids

LOGGER_NAME = "incident_brief.events"
LogFormat = Literal["console", "json"]
_stdlib = logging.getLogger(LOGGER_NAME)


def _add_trace(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.update(trace_ids())
    return event_dict


def _renderer(log_format: LogFormat) -> Any:
    if log_format == "json":
        return structlog.processors.JSONRenderer(sort_keys=True)
    return structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True)


def _build(log_format: LogFormat) -> Any:
    return structlog.wrap_logger(_stdlib, wrapper_class=structlog.stdlib.BoundLogger, processors=[
        redact_event,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace,
        _renderer(log_format),
    ])


_logger = _build("console")


def configure_events(*, enabled: bool = True, log_format: LogFormat = "console") -> None:
    """Called once by the ``serve`` and ``clock`` processes: events at INFO whatever the root
    level (they are what an operator reads), or off."""
    global _logger
    _logger = _build(log_format)
    _stdlib.setLevel(logging.INFO if enabled else logging.CRITICAL + 1)


def event(name: str, **fields: Any) -> None:
    """Record one step: ``event("tool_call", tool=..., outcome=...)``. ``None`` fields are left out.
    Checked against the level first: structlog would otherwise redact and render an event the
    logger then drops, on the hot path of every tool and model call."""
    if _stdlib.isEnabledFor(logging.INFO):
        _logger.info(name, **{key: value for key, value in fields.items() if value is not None})

