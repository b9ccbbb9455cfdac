"""Reading values out of evidence ``data`` (times, counts, points), forgiving of odd shapes:
evidence comes from outside, and one bad field must not cost the whole analysis."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if isinstance(value, str):
        try:
            return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def series_points(raw: Any) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, list | tuple) or len(item) < 2:
            continue
        t, v = item[0], item[1]
        if not isinstance(t, int | float) or not isinstance(v, int | float) or isinstance(v, bool):
            continue
        if math.isnan(v) or math.isinf(v):
            continue
        out.append((t / 1000 if t > 1e11 else float(t), float(v)))
    return sorted(out)
