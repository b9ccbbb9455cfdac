"""A metric's evidence as a small PNG for Slack, with the alert time marked.

matplotlib is imported lazily (it costs about half a second) and used through the object
API with the Agg canvas only: no pyplot global state, safe to call from worker threads.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from typing import Any

from bot.core.models import Evidence, EvidenceKind

WIDTH_IN, HEIGHT_IN, DPI = 7.0, 2.6, 110
LINE_COLOUR, ALERT_COLOUR = "#632ca6", "#d33833"  # Datadog purple; an alert red


def render_metric_chart(evidence: Evidence, alert_at: datetime) -> bytes:
    """PNG bytes of ``evidence.data["points"]`` with a vertical line at ``alert_at``.

    Raises ValueError for evidence that is not a metric or has no points: a caller should
    skip the chart, not post an empty one.
    """
    if evidence.kind != EvidenceKind.METRIC:
        raise ValueError(f"not a metric: {evidence.id} is {evidence.kind.value}")
    points = _points(evidence.data.get("points"))
    if not points:
        raise ValueError(f"no data points to draw for {evidence.id}")
    os.environ.setdefault("MPLBACKEND", "Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, DateFormatter, date2num
    from matplotlib.figure import Figure

    times = [t for t, _ in points]
    values = [v for _, v in points]
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(date2num(times), values, color=LINE_COLOUR, linewidth=1.4)
    alert = alert_at.astimezone(UTC)
    alert_x = float(date2num(alert))
    ax.axvline(alert_x, color=ALERT_COLOUR, linestyle="--", linewidth=1.2)
    left, right = min(times[0], alert), max(times[-1], alert)
    # Near the right edge the label goes left of the line, where it has room.
    near_right = (alert - left).total_seconds() > 0.7 * max((right - left).total_seconds(), 1.0)
    ax.annotate(f"alert {alert:%H:%M}", xy=(alert_x, 1.0), xycoords=("data", "axes fraction"),
                xytext=(-4 if near_right else 4, -12), textcoords="offset points",
                ha="right" if near_right else "left", color=ALERT_COLOUR, fontsize=8)
    ax.xaxis.set_major_locator(AutoDateLocator(tz=UTC, minticks=4, maxticks=9))
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=UTC))
    ax.set_xlim(float(date2num(left)), float(date2num(right)))
    low, high = min(0.0, min(values)), max(values)
    ax.set_ylim(low, high + 0.15 * ((high - low) or 1.0))  # headroom for the label
    unit = evidence.data.get("unit")
    if unit:
        ax.set_ylabel(str(unit), fontsize=8)
    ax.set_title(_title(evidence), fontsize=9, loc="left")
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("UTC", fontsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _points(raw: Any) -> list[tuple[datetime, float]]:
    out: list[tuple[datetime, float]] = []
    for item in raw or []:
        try:
            t, v = item[0], item[1]
            if v is None:
                continue
            out.append((datetime.fromtimestamp(float(t), UTC), float(v)))
        except (TypeError, ValueError, IndexError, OverflowError, OSError):
            continue  # one bad point must not cost the whole chart
    return sorted(out)


def _title(evidence: Evidence) -> str:
    # Metric names and queries are plain text in a PNG: nothing here is interpreted as markup,
    # but matplotlib treats "$...$" as mathtext, so dollars are escaped.
    text = str(evidence.data.get("query") or evidence.title).replace("$", r"\$")
    return text if len(text) <= 90 else text[:89] + "…"
