"""Datadog metric levels in words: a time is named only for the step the analysis would date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.changepoint import incident_step
from bot.core.models import TimeWindow
from connectors.datadog_evidence import describe_levels

ALERT = datetime(2026, 5, 12, 14, 0, tzinfo=UTC)
WINDOW = TimeWindow(alert_at=ALERT, start=ALERT - timedelta(minutes=30), end=ALERT + timedelta(minutes=5),
                    baseline_start=ALERT - timedelta(hours=2))


def minutely(values: list[float]) -> list[tuple[float, float]]:
    """One point a minute from the baseline's start."""
    start = WINDOW.baseline_start.timestamp()
    return [(start + 60 * i, v) for i, v in enumerate(values)]


def test_a_step_is_dated_by_the_shared_detector() -> None:
    points = minutely([1.0] * 110 + [5.0] * 15)  # steps at 13:50, inside the window
    summary = describe_levels(points, WINDOW, "req/s")
    step = incident_step(points, WINDOW)
    assert step is not None
    assert summary.changed_at == step.at == datetime(2026, 5, 12, 13, 50, tzinfo=UTC)
    assert summary.text == ("Rose from about 1 req/s before the window to about 5 req/s since the alert, 5.0x; "
                            "the change began around 13:50 UTC (peak 5 req/s).")
    assert (summary.before, summary.after) == (1.0, 5.0)


def test_a_step_older_than_the_window_moved_the_level_without_dating_the_incident() -> None:
    # The level rose at 13:00, half an hour before the window (yesterday's deploy, a past incident):
    # the medians differ, but the analysis dates no onset from it, so neither does the excerpt.
    points = minutely([1.0] * 60 + [3.0] * 65)
    summary = describe_levels(points, WINDOW, None)
    assert incident_step(points, WINDOW) is None
    assert summary.changed_at is None
    assert summary.text == ("Rose from about 1 before the window to about 3 since the alert, 3.0x, "
                            "without a single step (peak 3).")


def test_a_flat_series_is_steady() -> None:
    points = minutely([2.0, 2.1, 1.9, 2.05] * 31)
    summary = describe_levels(points, WINDOW, "ms")
    assert summary.changed_at is None
    assert summary.text.startswith("Steady at about 2")
    assert "before the window; peak 2.1 ms)." in summary.text


def test_no_points_and_no_baseline_say_so() -> None:
    assert describe_levels([], WINDOW, None).text == "No data points in the window."
    late = [(p[0] + 7200, p[1]) for p in minutely([4.0] * 5)]
    summary = describe_levels(late, WINDOW, None)
    assert summary.text == "About 4 since the alert (peak 4); no data before the window to compare with."
    assert (summary.before, summary.after, summary.changed_at) == (None, 4.0, None)
