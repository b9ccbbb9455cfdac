"""How the processes log: one handler on the root logger, text or JSON, always through the redactor.

Every record, ours or a library's (uvicorn's access log, the Slack SDK, SQLAlchemy, httpx), is
masked when it is created (`bot.core.redaction.install_logging_redaction`), then rendered by
the one root handler: ``text`` (a line per record) or ``json`` (one JSON object per line, via
structlog's `ProcessorFormatter`, for log shippers). uvicorn is told not to install handlers of
its own (``log_config=None``), and any it installed anyway are removed, so its access log
reaches the same handler. The step events (`bot.telemetry.events`) arrive already rendered:
in JSON mode they are rendered as JSON and merged into the line, not nested in it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

from bot.core.redaction import install_logging_redaction, redact_event

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Libraries that log every outgoing request (or every template) at INFO: heard at DEBUG only, so
# a server's INFO log is its own lines, the access log and warnings.
CHATTY_AT_INFO = ("httpx", "httpx2", "httpcore", "drain3", "openai", "anthropic")
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def _access_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """uvicorn's access record carries its parts as (masked) arguments: give them their own JSON
    keys. Other records' arguments are already in their message."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    if (record is not None and record.name == "uvicorn.access" and isinstance(args, tuple)
            and len(args) == len(_ACCESS_FIELDS)):
        event.update(zip(_ACCESS_FIELDS, args, strict=True))
    return event


_SHARED: list[Any] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
]


def _merge_rendered_json(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A message that is itself a JSON object (an event structlog rendered upstream) becomes the
    line's fields, so a log shipper sees one flat object, not a JSON string inside another."""
    message = event.get("event")
    if isinstance(message, str) and message.startswith("{") and message.endswith("}"):
        try:
            rendered = json.loads(message)
        except ValueError:
            return event
        if isinstance(rendered, dict) and isinstance(rendered.get("event"), str):
            return {**event, **rendered}
    return event


def _json_formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        pass_foreign_args=True,
        foreign_pre_chain=[*_SHARED, _access_fields, _merge_rendered_json],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,  # again, after the traceback is rendered: nothing leaves unmasked
            structlog.processors.JSONRenderer(),
        ],
    )


class _OurHandler(logging.StreamHandler):
    """Marks the handler this module installed, so configuring again replaces it."""


def configure_logging(level: str | int = "INFO", fmt: LogFormat = "text", stream: TextIO | None = None) -> None:
    """Install the root handler on `stream` (default: stderr), replacing one installed before,
    and the redactor. Idempotent."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(handler)
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(_json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    quiet = logging.WARNING if root.getEffectiveLevel() > logging.DEBUG else logging.NOTSET
    for name in CHATTY_AT_INFO:
        logging.getLogger(name).setLevel(quiet)
    release_uvicorn_loggers()
    # structlog's own loggers (if any module uses them) end in the same handler, redacted: as an
    # event dict for the JSON formatter, as "event key=value" text otherwise.
    chain: list[Any] = [structlog.stdlib.PositionalArgumentsFormatter()]
    if fmt == "json":
        chain += [*_SHARED, redact_event, structlog.stdlib.ProcessorFormatter.wrap_for_formatter]
    else:
        chain += [redact_event, structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True)]
    structlog.configure(processors=chain, logger_factory=structlog.stdlib.LoggerFactory(),
                        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=False)
    install_logging_redaction()


def release_uvicorn_loggers() -> None:
    """Send uvicorn's records to the root handler, at the root's level. A uvicorn `Config` built
    with its default `log_config` installs its own handlers and stops propagation, and any sets
    its loggers' levels; ours are built with ``log_config=None``, and this undoes the rest."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
