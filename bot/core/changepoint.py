"""Change-point detection: when did a time series step to a new level? Pure.

One detector for the whole bot: the analysis dates the incident's onset with it, and the
Datadog connector's metric excerpt ("the change began around HH:MM") says the same time,
because both call `incident_step`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from statistics import median

from pydantic import BaseModel, ConfigDict

from bot.core.models import TimeWindow

MIN_SEGMENT = 4  # points on each side of a change; with the 3/4 persistence rule, two spikes are not a step
_PERSISTENCE = 0.75  # share of each side's points that must sit on its side of the midpoint
_MIN_SIGMAS = 4.0  # the step must exceed this many robust sigmas (MAD) of the residuals
_MIN_RELATIVE = 0.2  # and 20% of the larger level: a 4-sigma wiggle on a flat line is not a step
MAX_RESEARCHES = 3  # older steps skipped before giving up on finding the incident's own
ONSET_SLACK = timedelta(minutes=5)  # a step this long before the incident window still belongs to it
HORIZON = timedelta(minutes=15)  # moves this long after the alert are consequences or recovery


class LevelChange(BaseModel):
    """A step in a series: ``index`` is the first point at the new level."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    at: datetime
    before: float
    after: float

    @property
    def ratio(self) -> float | None:
        return self.after / self.before if self.before else None


def _prefix_l1_costs(values: Sequence[float]) -> list[float]:
    """costs[i] = sum of |x - median| over values[:i], for every i, in O(n log n)."""
    lower: list[float] = []  # max-heap (negated): the smaller half, holds the median
    upper: list[float] = []
    sum_lower = sum_upper = 0.0
    costs = [0.0]
    for x in values:
        if not lower or x <= -lower[0]:
            heapq.heappush(lower, -x)
            sum_lower += x
        else:
            heapq.heappush(upper, x)
            sum_upper += x
        if len(lower) > len(upper) + 1:
            moved = -heapq.heappop(lower)
            sum_lower -= moved
            heapq.heappush(upper, moved)
            sum_upper += moved
        elif len(upper) > len(lower):
            moved = heapq.heappop(upper)
            sum_upper -= moved
            heapq.heappush(lower, -moved)
            sum_lower += moved
        mid = -lower[0]
        costs.append((mid * len(lower) - sum_lower) + (sum_upper - mid * len(upper)))
    return costs


def _significant(before: Sequence[float], after: Sequence[float]) -> tuple[float, float] | None:
    b, a = median(before), median(after)
    delta = abs(a - b)
    residuals = [abs(x - b) for x in before] + [abs(x - a) for x in after]
    sigma = 1.4826 * median(residuals)
    if delta <= _MIN_SIGMAS * sigma or delta < _MIN_RELATIVE * max(abs(a), abs(b)) or delta == 0:
        return None
    mid = (a + b) / 2
    def on_side(xs: Sequence[float], level: float) -> float:
        return sum(1 for x in xs if (x > mid) == (level > mid)) / len(xs)
    if on_side(after, a) < _PERSISTENCE or on_side(before, b) < _PERSISTENCE:
        return None
    return b, a


def detect_level_change(points: Sequence[tuple[float, float]], *,
                        min_segment: int = MIN_SEGMENT) -> LevelChange | None:
    """The best single step in a time series, or None when the series has no clear step.

    ``points`` are ``(epoch_seconds, value)``. The split minimises the absolute deviation from
    each side's median (so isolated spikes barely move it); the step counts only when the
    medians differ by more than 4 robust sigmas (MAD) and 20%, and at least 3/4 of the points
    on each side sit on their side of the midpoint.
    """
    ordered = sorted(points)
    values = [v for _, v in ordered]
    n = len(values)
    if n < 2 * min_segment:
        return None
    prefix = _prefix_l1_costs(values)
    suffix = _prefix_l1_costs(values[::-1])
    best_k, best_cost = -1, math.inf
    for k in range(min_segment, n - min_segment + 1):
        cost = prefix[k] + suffix[n - k]
        if cost < best_cost - 1e-12:
            best_k, best_cost = k, cost
    levels = _significant(values[:best_k], values[best_k:])
    if levels is None:
        return None
    return LevelChange(index=best_k, at=datetime.fromtimestamp(ordered[best_k][0], UTC),
                       before=levels[0], after=levels[1])



def change_in_window(points: Sequence[tuple[float, float]], since: datetime) -> LevelChange | None:
    """The step that starts at or after `since`: when the best step is an older one (a deploy
    yesterday, a past incident), search again after it (binary segmentation)."""
    ordered = sorted(points)
    start = 0
    for _ in range(MAX_RESEARCHES):
        change = detect_level_change(ordered[start:])
        if change is None:
            return None
        if change.at >= since:
            return change.model_copy(update={"index": start + change.index})
        start += change.index
    return None


def within_horizon(points: Sequence[tuple[float, float]], window: TimeWindow) -> list[tuple[float, float]]:
    """The points up to `HORIZON` after the alert: what may date the incident's onset."""
    horizon = (window.alert_at + HORIZON).timestamp()
    return sorted(p for p in points if p[0] <= horizon)


def incident_step(points: Sequence[tuple[float, float]], window: TimeWindow) -> LevelChange | None:
    """The step that starts this incident in a series of ``(epoch_seconds, value)`` points,
    or None. The analysis's onset and the connector's "the change began around" both come
    from here, so they never disagree."""
    return change_in_window(within_horizon(points, window), window.start - ONSET_SLACK)
