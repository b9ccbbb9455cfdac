"""Masking log records: every stdlib logger, at every level, whatever library it belongs to.

aiosqlite logs each statement with its parameters at DEBUG, SQLAlchemy echoes them, httpx and
the Atlassian library log URLs and bodies: the same secrets the evidence carries. Records are
masked when they are made (the record factory) and again at our handlers (a filter), so no
logger can route around it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from bot.core.redaction.engine import redact, redact_obj


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: every value of the event is redacted before rendering."""
    for key, value in list(event_dict.items()):
        event_dict[key] = redact_obj(value) if isinstance(value, str | Mapping | list | tuple) else value
    return event_dict


def _redact_arg(value: Any) -> Any:
    """One logging argument, masked but of the same kind where it can be: numbers stay numbers
    (``%d`` must still format them), an object whose text needs no mask stays that object."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    try:
        text = str(value)
    except Exception:  # an object that cannot even say what it is carries nothing to mask
        return value
    masked = redact(text)
    return value if masked == text else masked


def _redact_args(args: Any) -> Any:
    """A record's arguments with the same shape: a tuple of the same length, a mapping with the
    same keys. Formatters that read the arguments themselves (uvicorn's access log unpacks
    ``(client_addr, method, path, http_version, status_code)``) keep working."""
    if isinstance(args, tuple):
        return tuple(_redact_arg(value) for value in args)
    if isinstance(args, Mapping):
        return {key: _redact_arg(value) for key, value in args.items()}
    return _redact_arg(args)


def _redact_record(record: logging.LogRecord) -> None:
    """Mask a log record in place. The arguments are masked one by one (keeping their shape);
    then the formatted message is checked as a whole, because a secret can be split between the
    template and an argument (``"token=%s"``): only then is the record collapsed into its masked
    text (``args=()``). A record whose arguments do not fit its template is collapsed too, so
    the handler does not fail on it later."""
    if isinstance(record.msg, Mapping):  # a structlog event dict, on its way to structlog's formatter
        record.msg = redact_obj(dict(record.msg))
        return
    if record.args:
        record.args = _redact_args(record.args)
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not hide the record
        message, record.args = str(record.msg), ()
    masked = redact(message)
    if masked != message or not isinstance(record.msg, str):
        record.msg, record.args = masked, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """A stdlib logging filter that redacts the message, its arguments and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


class _RedactingRecordFactory:
    """Wraps the record factory, so every record is masked when it is created: whatever logger
    it comes from and whichever handlers are added later. (A filter on the root *logger* never
    sees records that child loggers propagate; only handler filters do.)"""

    def __init__(self, wrapped: Callable[..., logging.LogRecord]) -> None:
        self.wrapped = wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        _redact_record(record)
        return record


def install_logging_redaction(logger: logging.Logger | None = None) -> None:
    """Redact every stdlib log record from now on (idempotent): the record factory is wrapped,
    and the handlers already on `logger` (default: root) get a `RedactingFilter` as well, for
    records made before this call or by a custom factory installed later."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(current))
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
