"""Datadog answers as `Evidence`: monitors, dashboards, metric levels, log patterns, events.

Pure normalisation of what `connectors.datadog` read (plain dicts from the client's models):
no client, no I/O. A metric's "the change began around HH:MM" comes from
`bot.core.changepoint.incident_step`, the detector the analysis dates the onset with, so the
excerpt and the analysis never name different times.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from bot.core.changepoint import incident_step
from bot.core.models import Evidence, EvidenceKind, Provenance, Source, TimeWindow, evidence_id
from connectors.log_patterns import LogLine, PatternStats

EXCERPT_TEXT_CHARS = 280
STEADY_WITHIN = 0.2  # before/after medians closer than this (relative) read as "steady"


def provenance(tool: str, request: str) -> Provenance:
    return Provenance(system=Source.DATADOG, tool=tool, request=request, fetched_at=datetime.now(UTC))


def monitor_evidence(m: dict[str, Any], monitor_id: int, link_base: str, prov: Provenance) -> Evidence:
    mid = int(m.get("id", monitor_id))
    status = str(m.get("overall_state") or "unknown")
    triggered = _last_triggered(m)
    when = f", last triggered {hhmm(triggered)}" if triggered else ""
    return Evidence(
        id=evidence_id(EvidenceKind.MONITOR, str(mid)),
        kind=EvidenceKind.MONITOR,
        source=Source.DATADOG,
        title=f"Monitor: {m.get('name') or mid}",
        excerpt=f"Monitor is {status}{when}. Query: {clip(str(m.get('query') or ''))}",
        timestamp=triggered,
        link=f"{link_base}/monitors/{mid}",
        provenance=prov,
        ref={"monitor_id": str(mid)},
        data={"monitor_id": mid, "query": str(m.get("query") or ""), "status": status,
              "tags": [str(t) for t in m.get("tags") or []], "name": str(m.get("name") or "")},
    )


def dashboard_evidence(dashboard_id: str, dash: dict[str, Any], window: TimeWindow, link_base: str,
                       prov: Provenance) -> Evidence:
    """The dashboard, with its timeseries widgets' queries in ``data["widgets"]``."""
    widgets = _widget_queries(dash.get("widgets") or [])
    names = ", ".join(w["title"] for w in widgets) or "no timeseries widgets"
    return Evidence(
        id=evidence_id(EvidenceKind.DASHBOARD, dashboard_id),
        kind=EvidenceKind.DASHBOARD,
        source=Source.DATADOG,
        title=f"Dashboard: {dash.get('title') or dashboard_id}",
        excerpt=clip(f"{len(widgets)} timeseries widgets: {names}"),
        link=f"{link_base}/dashboard/{dashboard_id}?" + range_qs(window),
        provenance=prov,
        ref={"dashboard_id": dashboard_id},
        data={"dashboard_id": dashboard_id, "widgets": widgets},
    )


def metric_evidence(query: str, series: dict[str, Any], window: TimeWindow, link_base: str,
                    prov: Provenance) -> Evidence:
    points = [(int(p[0]) // 1000, float(p[1])) for p in series.get("pointlist") or []
              if len(p) >= 2 and p[0] is not None and p[1] is not None]
    unit = _unit(series.get("unit"))
    summary = describe_levels(points, window, unit)
    metric = str(series.get("metric") or query)
    scope = str(series.get("scope") or "*")
    link = f"{link_base}/metric/explorer?" + urlencode(
        {"exp_metric": metric, "exp_scope": scope}) + "&" + range_qs(window)
    return Evidence(
        id=evidence_id(EvidenceKind.METRIC, query),
        kind=EvidenceKind.METRIC,
        source=Source.DATADOG,
        title=f"Metric: {clip(query, 120)}",
        excerpt=summary.text,
        timestamp=summary.changed_at,
        link=link,
        provenance=prov,
        ref={"query": query},
        data={"query": query, "points": [[t, v] for t, v in points], "unit": unit,
              "before": summary.before, "after": summary.after,
              "changed_at": summary.changed_at.isoformat() if summary.changed_at else None},
    )


def pattern_evidence(p: PatternStats, service: str, env: str, window: TimeWindow, link: str,
                     prov: Provenance, truncated: bool, fetched: int) -> Evidence:
    novelty = "new since the baseline" if p.is_new else f"{p.count_before} in the baseline before"
    noun = "event" if p.count == 1 else "events"
    excerpt = (f"{p.count} {p.status} {noun} from {hhmm(window.start)} to {hhmm(window.end)} "
               f"({novelty}); first seen {hhmm(p.first_seen)}, last seen {hhmm(p.last_seen)}. "
               f"Pattern: {clip(p.template, 160)}. Sample: {clip(p.sample, 200)}")
    if truncated:
        excerpt = f"[partial: only the newest {fetched} events were read] " + excerpt
    return Evidence(
        id=evidence_id(EvidenceKind.LOG_PATTERN, f"{service}|{env}|{p.template}"),
        kind=EvidenceKind.LOG_PATTERN,
        source=Source.DATADOG,
        title=f"Log pattern ({p.status}, {p.count} in window): {clip(p.template, 100)}",
        excerpt=excerpt,
        timestamp=p.first_seen,
        link=link,
        provenance=prov,
        ref={"sample": p.sample},
        data={"template": p.template, "sample": p.sample, "count": p.count, "status": p.status,
              "first_seen": p.first_seen.isoformat(), "last_seen": p.last_seen.isoformat(),
              "count_before": p.count_before, "truncated": truncated},
    )


def event_evidence(item: dict[str, Any], link_base: str, window: TimeWindow, prov: Provenance) -> Evidence:
    attrs = item.get("attributes") or {}
    inner = attrs.get("attributes") or {}
    event_id = str(item.get("id") or (inner.get("evt") or {}).get("id") or "")
    tags = [str(t) for t in attrs.get("tags") or inner.get("tags") or []]
    title = str(inner.get("title") or (inner.get("evt") or {}).get("name") or "event")
    at = _as_datetime(attrs.get("timestamp"))
    source = next((t.split(":", 1)[1] for t in tags if t.startswith("source:")),
                  inner.get("source_type_name"))
    text = str(attrs.get("message") or "")
    excerpt = f"{title} at {hhmm(at) if at else 'unknown time'}" + (f": {clip(text)}" if text else "")
    return Evidence(
        id=evidence_id(EvidenceKind.EVENT, event_id),
        kind=EvidenceKind.EVENT,
        source=Source.DATADOG,
        title=f"Event: {clip(title, 120)}",
        excerpt=excerpt,
        timestamp=at,
        link=f"{link_base}&{urlencode({'event': event_id})}&{range_qs(window)}",
        provenance=prov,
        ref={"event_id": event_id, "title": title},
        data={"event_id": event_id, "tags": tags, "source": str(source) if source else None},
    )


def log_line(item: dict[str, Any]) -> LogLine:
    attrs = item.get("attributes") or {}
    at = _as_datetime(attrs.get("timestamp")) or datetime.fromtimestamp(0, UTC)
    return LogLine(message=str(attrs.get("message") or ""), status=str(attrs.get("status") or "info"),
                   timestamp=at)


# --- metric levels, in plain words ----------------------------------------------------


@dataclass(frozen=True)
class LevelSummary:
    """Before/after levels of a series around the alert, and when the incident's step began."""

    text: str
    before: float | None
    after: float | None
    changed_at: datetime | None


def describe_levels(points: Sequence[tuple[float, float]], window: TimeWindow, unit: str | None) -> LevelSummary:
    """Median level before the window vs. since the alert (or the last few points), and the
    step `incident_step` finds, if any: a time is named only when there is a step to date."""
    if not points:
        return LevelSummary("No data points in the window.", None, None, None)
    start_s, alert_s = window.start.timestamp(), window.alert_at.timestamp()
    before = [v for t, v in points if t < start_s]
    after = [v for t, v in points if t >= alert_s] or [v for _, v in points[-5:]]
    b = statistics.median(before) if before else None
    a = statistics.median(after)
    u = f" {unit}" if unit else ""
    in_window = [v for t, v in points if t >= start_s]
    peak = f"peak {num(max(in_window) if in_window else a)}{u}"
    if b is None:
        return LevelSummary(f"About {num(a)}{u} since the alert ({peak}); "
                            "no data before the window to compare with.", None, a, None)
    step = incident_step(points, window)
    if step is None and abs(a - b) <= max(abs(b) * STEADY_WITHIN, 1e-9):
        text = f"Steady at about {num(a)}{u} (about {num(b)}{u} before the window; {peak})."
        return LevelSummary(text, b, a, None)
    ratio = f", {a / b:.1f}x" if b > 0 and a > b else ""
    moved = (f"{'Rose' if a > b else 'Fell'} from about {num(b)}{u} before the window to about {num(a)}{u} "
             f"since the alert{ratio}")
    if step is None:  # a ramp, or a step older than the incident: no single time to name
        return LevelSummary(f"{moved}, without a single step ({peak}).", b, a, None)
    return LevelSummary(f"{moved}; the change began around {hhmm(step.at)} ({peak}).", b, a, step.at)


# --- small helpers --------------------------------------------------------------------


def range_qs(window: TimeWindow) -> str:
    """The time range of a Datadog web link: from the baseline's start to the window's end."""
    return urlencode({"from_ts": int(window.baseline_start.timestamp() * 1000),
                      "to_ts": int(window.end.timestamp() * 1000), "live": "false"})


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hhmm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M UTC")


def num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def clip(text: str, limit: int = EXCERPT_TEXT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _widget_queries(widgets: list[dict[str, Any]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for widget in widgets:
        definition = widget.get("definition") or {}
        if definition.get("type") == "group":  # groups nest widgets one level down
            out += _widget_queries(definition.get("widgets") or [])
            continue
        if definition.get("type") != "timeseries":
            continue
        for request in definition.get("requests") or []:
            if q := request.get("q"):
                out.append({"title": str(definition.get("title") or q), "query": str(q)})
    return out


def _last_triggered(monitor: dict[str, Any]) -> datetime | None:
    groups = ((monitor.get("state") or {}).get("groups") or {}).values()
    stamps = [g.get("last_triggered_ts") for g in groups if g.get("last_triggered_ts")]
    return datetime.fromtimestamp(max(stamps), UTC) if stamps else None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str) and value:
        try:
            return _as_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _unit(raw: Any) -> str | None:
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return str(raw[0].get("short_name") or raw[0].get("name") or "") or None
    return None
