"""How the processes log: one handler on the root logger, text or JSON, always through the redactor.

Every record, ours or a library's (uvicorn's access log, the Slack SDK, SQLAlchemy, httpx), is
masked when it is created (`bot.core.redaction.install_logging_redaction`), then rendered by
the one root handler: ``text`` (a line per record) or ``json`` (one JSON object per line, via
structlog's `ProcessorFormatter`, for log shippers). uvicorn is told not to install handlers of
its own (``log_config=None``), and any it installed anyway are removed, so its access log
reaches the same handler.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from bot.core.redaction import install_logging_redaction, redact_event

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def _access_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """uvicorn's access record carries its parts as arguments: give them their own JSON keys."""
    record = event.get("_record")
    if (record is not None and record.name == "uvicorn.access" and isinstance(record.args, tuple)
            and len(record.args) == len(_ACCESS_FIELDS)):
        event.update(zip(_ACCESS_FIELDS, record.args, strict=True))
    return event


def _json_formatter() -> logging.Formatter:
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _access_fields],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,  # again, after the traceback is rendered: nothing leaves unmasked
            structlog.processors.JSONRenderer(),
        ],
    )


class _OurHandler(logging.StreamHandler):
    """Marks the handler this module installed, so configuring again replaces it."""


def configure_logging(level: str | int = "INFO", fmt: LogFormat = "text") -> None:
    """Install the root handler (replacing one installed before) and the redactor. Idempotent."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(handler)
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(_json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    release_uvicorn_loggers()
    # structlog's own loggers (if any module uses them) end in the same handler, redacted.
    structlog.configure(
        processors=[structlog.stdlib.add_log_level, redact_event,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    install_logging_redaction()


def release_uvicorn_loggers() -> None:
    """Send uvicorn's records to the root handler. A uvicorn `Config` built with its default
    `log_config` installs its own handlers and stops propagation; ours are built with
    ``log_config=None``, and this undoes it for any that was not."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
