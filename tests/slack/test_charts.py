"""The metric chart a person sees in Slack: a real PNG, the alert marked where it happened."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from matplotlib.image import imread

from bot.core.models import Evidence, EvidenceKind, Provenance, Source, evidence_id
from bot.slack.charts import ALERT_COLOUR, render_metric_chart

START = datetime(2026, 5, 12, 12, 0, tzinfo=UTC)


def metric(points: list[list[float]], kind: EvidenceKind = EvidenceKind.METRIC) -> Evidence:
    query = "sum:trace.http.request.errors{service:checkout-api}.as_rate()"
    return Evidence(
        id=evidence_id(kind, query), kind=kind, source=Source.DATADOG, title=f"Metric: {query}",
        excerpt="Rose from about 0.3 to about 9.5", ref={"query": query},
        provenance=Provenance(system=Source.DATADOG, tool="datadog.query_metrics",
                              request="GET /api/v1/query", fetched_at=START),
        data={"query": query, "points": points, "unit": "req/s"},
    )


def step_series() -> list[list[float]]:
    base = int(START.timestamp())
    return [[base + 60 * i, 0.3 if i < 118 else 9.5] for i in range(125)]


def alert_columns(png: bytes) -> np.ndarray:
    """x pixel positions where the alert line's red shows."""
    pixels = imread(io.BytesIO(png))[:, :, :3]
    red = np.array([int(ALERT_COLOUR[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    mask = np.all(np.abs(pixels - red) < 0.08, axis=2)
    return np.nonzero(mask.sum(axis=0) > 10)[0]  # a vertical line, not the label's few pixels


def test_renders_a_png_with_the_alert_line() -> None:
    png = render_metric_chart(metric(step_series()), START + timedelta(minutes=121))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert alert_columns(png).size > 0


def test_the_alert_line_sits_at_the_alert_time() -> None:
    early = alert_columns(render_metric_chart(metric(step_series()), START + timedelta(minutes=30)))
    late = alert_columns(render_metric_chart(metric(step_series()), START + timedelta(minutes=120)))
    width = imread(io.BytesIO(render_metric_chart(metric(step_series()), START))).shape[1]
    assert early.mean() < late.mean()
    # 30 of 124 minutes in vs 120 of 124: the gap is most of the plot's width.
    assert (late.mean() - early.mean()) > 0.5 * width


def test_only_metrics_with_points_are_drawn() -> None:
    with pytest.raises(ValueError, match="not a metric"):
        render_metric_chart(metric(step_series(), EvidenceKind.LOG_PATTERN), START)
    with pytest.raises(ValueError, match="no data points"):
        render_metric_chart(metric([]), START)
    with pytest.raises(ValueError, match="no data points"):
        render_metric_chart(metric([[1, None], ["x", 2]]), START)  # type: ignore[list-item]
