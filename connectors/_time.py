"""Vendors' timestamps read one way by every connector."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as the vendors write it (``Z``, ``+00:00``, Jira's ``-0700``), always
    aware: one without an offset is UTC. Anything else (missing, a number, garbage) is None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
