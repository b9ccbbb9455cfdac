"""The process's logging set-up, restored after a test that changes it (`configure_logging`, or a
CLI command run in-process that configures logging as `serve` and `clock` do). Left changed, it
would silence later tests' `caplog` (a root level of ERROR) or double-wrap the record factory."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest
import structlog

from bot.telemetry import logs

NAMED = (*logs.CHATTY_AT_INFO, *logs.UVICORN_LOGGERS)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    with kept_logging():
        yield


@contextlib.contextmanager
def kept_logging() -> Iterator[None]:
    """The logging set-up as it is now, put back on exit (for module-scoped fixtures too)."""
    root = logging.getLogger()
    handlers, level, factory = list(root.handlers), root.level, logging.getLogRecordFactory()
    named = {name: (logger.level, logger.propagate, list(logger.handlers))
             for name in NAMED for logger in [logging.getLogger(name)]}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.setLogRecordFactory(factory)
        for name, (old_level, propagate, old_handlers) in named.items():
            logger = logging.getLogger(name)
            logger.setLevel(old_level)
            logger.propagate = propagate
            logger.handlers[:] = old_handlers
        structlog.reset_defaults()
