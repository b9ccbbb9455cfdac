"""Metric evidence read as signals: which series stepped near the incident, and which are saturated."""

from __future__ import annotations

from statistics import median

from bot.analyse.signals import MetricChange
from bot.analyse.values import series_points
from bot.analyse.vocabulary import metric_role, metric_upstream, percent_like
from bot.analyse.weights import SATURATION_PCT
from bot.core.changepoint import incident_step, within_horizon
from bot.core.models import Evidence, EvidenceKind, TimeWindow


def metric_signals(evidence: list[Evidence], window: TimeWindow) -> tuple[list[MetricChange], list[str]]:
    """Significant level changes in the incident window, and saturated percent metrics."""
    changes: list[MetricChange] = []
    saturated: list[str] = []
    for ev in evidence:
        if ev.kind != EvidenceKind.METRIC:
            continue
        query = str(ev.data.get("query") or ev.ref.get("query") or ev.title)
        unit = ev.data.get("unit") if isinstance(ev.data.get("unit"), str) else None
        points = within_horizon(series_points(ev.data.get("points")), window)
        percent = percent_like(query, unit)
        change = incident_step(points, window)
        if percent and len(points) >= 3 and median(v for _, v in points[-5:]) >= SATURATION_PCT:
            saturated.append(ev.id)
        if change is None:
            continue
        changes.append(MetricChange(
            evidence_id=ev.id, query=query, role=metric_role(query), upstream=metric_upstream(query),
            onset=change.at, before=change.before, after=change.after, unit=unit,
            saturated=percent and change.after >= SATURATION_PCT))
    changes.sort(key=lambda c: (c.onset, c.evidence_id))
    return changes, saturated
