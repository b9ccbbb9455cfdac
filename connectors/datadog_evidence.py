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
from bot.core.redaction import clip as masked_clip
from connectors.datadog_widgets import dashboard_queries
from connectors.log_patterns import LogLine, PatternStats

EXCERPT_TEXT_CHARS = 280
# A grouped query can answer hundreds of series (one per host or pod): a brief cites the groups
# that moved most, and says how many more there are.
MAX_GROUPS = 5
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
                       prov: Provenance, *, run: int | None = None, rejected: int = 0) -> Evidence:
    """The dashboard, with the metric queries its widgets graph in ``data["widgets"]`` (every
    widget type, classic ``q`` and formulas-and-functions ``queries`` alike; see
    `connectors.datadog_widgets`). `run` is how many of them were queried (None: all),
    `rejected` how many of those Datadog refused."""
    found = dashboard_queries(dash)
    widgets = [{"title": w.title, "query": w.query, "widget_type": w.widget_type}
               | ({"formula": w.formula} if w.formula else {}) for w in found.metric]
    names = ", ".join(dict.fromkeys(w.title for w in found.metric))
    if found.metric:
        text = (f"{found.widgets_with_metrics} widgets graph metrics ({found.timeseries_widgets} timeseries), "
                f"{len(found.metric)} metric queries: {names}")
    else:
        text = "No widget graphs a metric query"
    notes = []
    if run is not None and run < len(dict.fromkeys(w.query for w in found.metric)):
        notes.append(f"only the first {run} distinct queries were read")
    if rejected:
        notes.append(f"Datadog refused {rejected} of them")
    if found.other_sources:
        counted = ", ".join(f"{n} {source}" for source, n in sorted(found.other_sources.items()))
        notes.append(f"queries over other data not read: {counted}")
    if notes:
        text = clip(text, EXCERPT_TEXT_CHARS - 120) + ". " + "; ".join(notes).capitalize()
    return Evidence(
        id=evidence_id(EvidenceKind.DASHBOARD, dashboard_id),
        kind=EvidenceKind.DASHBOARD,
        source=Source.DATADOG,
        title=f"Dashboard: {dash.get('title') or dashboard_id}",
        excerpt=clip(text + ("" if text.endswith(".") else "."), 2 * EXCERPT_TEXT_CHARS),
        link=f"{link_base}/dashboard/{dashboard_id}?" + range_qs(window),
        provenance=prov,
        ref={"dashboard_id": dashboard_id},
        data={"dashboard_id": dashboard_id, "widgets": widgets, "other_sources": dict(found.other_sources),
              "timeseries_widgets": found.timeseries_widgets},
    )


def metric_series_evidence(query: str, series: list[dict[str, Any]], window: TimeWindow, link_base: str,
                           prov: Provenance, group_by: Sequence[str] = ()) -> list[Evidence]:
    """One evidence item per series of a query's answer. A grouped query (``... by {host}``)
    answers one series per group: each group is its own item, with an id that names the group,
    the `MAX_GROUPS` that changed most kept, and the rest counted in their excerpts.

    An answer is grouped when it says so: its ``group_by`` keys, or a series' ``tag_set`` (older
    answers carry only the first, ``[]`` tag sets mean ungrouped). So a grouped query that only
    one group answered still names that group and says it is the only one: "one host reporting"
    is itself a finding."""
    series = [s for s in series if isinstance(s, dict)]
    keys = [str(k) for k in group_by if k]
    if len(series) <= 1 and not keys and not any(_tag_set(s) for s in series):
        return [metric_evidence(query, s, window, link_base, prov) for s in series]
    described = [(s, describe_levels(_points(s), window, _unit(s.get("unit")))) for s in series]
    described.sort(key=lambda pair: (-_change(pair[1]), _group(pair[0], keys)))
    kept, rest = described[:MAX_GROUPS], len(described) - MAX_GROUPS
    out = []
    for rank, (item, _summary) in enumerate(kept, 1):
        group = _group(item, keys)
        note = (f"group {group}, {rank} of {len(described)} groups by change" if len(described) > 1
                else f"group {group}, the only group that answered")
        note += f"; {rest} more group{'s' if rest > 1 else ''} not shown" if rest > 0 else ""
        out.append(metric_evidence(query, item, window, link_base, prov, group=group, note=note,
                                   groups=len(described)))
    return out


def metric_evidence(query: str, series: dict[str, Any], window: TimeWindow, link_base: str,
                    prov: Provenance, *, group: str | None = None, note: str | None = None,
                    groups: int = 1) -> Evidence:
    points = _points(series)
    unit = _unit(series.get("unit"))
    summary = describe_levels(points, window, unit)
    metric = str(series.get("metric") or query)
    scope = str(series.get("scope") or "*")
    link = f"{link_base}/metric/explorer?" + urlencode(
        {"exp_metric": metric, "exp_scope": scope}) + "&" + range_qs(window)
    return Evidence(
        id=evidence_id(EvidenceKind.METRIC, f"{query}|{group}" if group else query),
        kind=EvidenceKind.METRIC,
        source=Source.DATADOG,
        title=f"Metric: {clip(query, 120)}" + (f" ({clip(group, 60)})" if group else ""),
        excerpt=f"[{note}] {summary.text}" if note else summary.text,
        timestamp=summary.changed_at,
        link=link,
        provenance=prov,
        ref={"query": query} | ({"group": group} if group else {}),
        data={"query": query, "points": [[t, v] for t, v in points], "unit": unit,
              "before": summary.before, "after": summary.after,
              "changed_at": summary.changed_at.isoformat() if summary.changed_at else None}
        | ({"group": group, "groups": groups} if group else {}),
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
    """One line of at most `limit` characters, masked before it is cut (a secret cut in half no
    longer matches its pattern and would pass the choke point's redaction)."""
    return masked_clip(text, limit)


def _points(series: dict[str, Any]) -> list[tuple[int, float]]:
    return [(int(p[0]) // 1000, float(p[1])) for p in series.get("pointlist") or []
            if isinstance(p, list | tuple) and len(p) >= 2 and p[0] is not None and p[1] is not None]


def _tag_set(series: dict[str, Any]) -> list[str]:
    """The group-by tags of one series of a grouped answer (``["host:a"]``); [] when ungrouped."""
    return [str(t) for t in series.get("tag_set") or [] if t]


def _group(series: dict[str, Any], group_by: Sequence[str] = ()) -> str:
    """The group a series stands for: its tag set (``host:a,env:prod``); else the tags of its
    scope whose keys the answer grouped by (the scope also holds the query's filter,
    ``bar:baz,host:a``); else the whole scope."""
    if tags := _tag_set(series):
        return ",".join(tags)
    scope = str(series.get("scope") or "*")
    grouped = [tag for tag in scope.split(",") if tag.split(":", 1)[0] in group_by]
    return ",".join(grouped) or scope


def _change(summary: LevelSummary) -> float:
    """How much a group moved, relative to its level before the window (no baseline: last)."""
    if summary.before is None or summary.after is None:
        return -1.0
    return abs(summary.after - summary.before) / max(abs(summary.before), 1e-9)


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
