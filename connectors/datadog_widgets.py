"""What a Datadog dashboard graphs: the metric queries behind its widgets. Pure, no I/O.

Dashboards are written in several generations of the widget format, and all of them are in use:

- classic requests carry the metric query in ``q`` (``{"q": "avg:system.load.1{*}"}``);
- formulas-and-functions requests carry ``queries`` (each named, with a ``data_source``) and
  ``formulas`` over those names (``query1 / query2 * 100``);
- scatterplots and host maps key their requests by role (``{"x": {...}, "y": {...}}``,
  ``{"fill": {...}, "size": {...}}``) instead of listing them;
- group and powerpack widgets nest other widgets.

Every widget type that graphs a metric is read (timeseries, query value, top list, heat map,
change, distribution, scatter plot, host map, query table, geo map, sunburst, treemap...), not
only timeseries. Only metric queries (``q``, or a ``queries`` entry whose ``data_source`` is
``metrics``) can be run against ``GET /api/v1/query``; queries over logs, spans, RUM, events,
SLOs or costs are counted, so the dashboard's evidence says they exist, but not run.

Template variables (``$env``) are resolved to their defaults, as the dashboard opens: the query
API knows nothing of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

METRIC_SOURCES = {"metrics"}
# Widget definition keys that nest other widgets (group widgets, powerpacks).
_NESTED = ("widgets",)
_STAR_IN_LIST = re.compile(r"\{\s*\*\s*,\s*|\s*,\s*\*\s*(?=[,}])")
_TEMPLATE_VAR = re.compile(r"\$([A-Za-z0-9_.-]+?)(\.value)?(?=[^A-Za-z0-9_.-]|$)")


@dataclass(frozen=True)
class WidgetQuery:
    """One metric query a widget graphs, with what the widget calls it."""

    title: str
    widget_type: str
    query: str
    formula: str | None = None  # the formula this query feeds, when the widget has one


@dataclass
class DashboardQueries:
    metric: list[WidgetQuery] = field(default_factory=list)
    other_sources: dict[str, int] = field(default_factory=dict)  # data source -> queries not run
    widgets_with_metrics: int = 0
    timeseries_widgets: int = 0


def dashboard_queries(dashboard: dict[str, Any]) -> DashboardQueries:
    """Every metric query of the dashboard's widgets, in the dashboard's order, template
    variables resolved to their defaults."""
    found = DashboardQueries()
    defaults = _template_defaults(dashboard.get("template_variables"))
    _walk(_as_list(dashboard.get("widgets")), defaults, found)
    return found


def _walk(widgets: list[Any], defaults: dict[str, tuple[str, str]], found: DashboardQueries) -> None:
    for widget in widgets:
        definition = _as_dict(_as_dict(widget).get("definition"))
        for key in _NESTED:
            _walk(_as_list(definition.get(key)), defaults, found)
        powerpack = _as_dict(_as_dict(definition.get("group_widget")).get("definition"))
        _walk(_as_list(powerpack.get("widgets")), defaults, found)
        requests = definition.get("requests")
        if not requests:
            continue
        kind = str(definition.get("type") or "widget")
        title = str(definition.get("title") or "").strip()
        before = len(found.metric)
        for request in _requests(requests):
            _read_request(request, kind, title, defaults, found)
        if len(found.metric) > before:
            found.widgets_with_metrics += 1
            found.timeseries_widgets += kind == "timeseries"


def _requests(requests: Any) -> list[dict[str, Any]]:
    """A widget's requests: a list, or a mapping by role (scatterplot x/y, host map fill/size),
    whose values may be requests or, for newer scatterplots, a ``table`` request."""
    if isinstance(requests, list):
        return [r for r in requests if isinstance(r, dict)]
    if isinstance(requests, dict):
        return [r for r in requests.values() if isinstance(r, dict)]
    return []


def _read_request(request: dict[str, Any], kind: str, title: str, defaults: dict[str, tuple[str, str]],
                  found: DashboardQueries) -> None:
    if isinstance(request.get("q"), str) and request["q"].strip():
        query = _resolve(request["q"].strip(), defaults)
        found.metric.append(WidgetQuery(title or query, kind, query))
    queries = [q for q in _as_list(request.get("queries")) if isinstance(q, dict)]
    formulas = [str(f.get("formula")) for f in _as_list(request.get("formulas"))
                if isinstance(f, dict) and f.get("formula")]
    for item in queries:
        source = str(item.get("data_source") or "metrics")
        text = item.get("query")
        if source not in METRIC_SOURCES or not isinstance(text, str) or not text.strip():
            found.other_sources[source] = found.other_sources.get(source, 0) + 1
            continue
        name = str(item.get("name") or "")
        formula = next((f for f in formulas if name and re.search(rf"\b{re.escape(name)}\b", f)), None)
        query = _resolve(text.strip(), defaults)
        found.metric.append(WidgetQuery(title or query, kind, query,
                                        formula if formula and formula != name else None))
    for key in ("log_query", "apm_query", "rum_query", "event_query", "security_query",
                "network_query", "process_query", "profile_metrics_query", "audit_query"):
        if request.get(key):
            source = key.removesuffix("_query")
            found.other_sources[source] = found.other_sources.get(source, 0) + 1


def _template_defaults(variables: Any) -> dict[str, tuple[str, str]]:
    """``name -> (prefix, default value)`` of the dashboard's template variables."""
    out: dict[str, tuple[str, str]] = {}
    for var in _as_list(variables):
        if not isinstance(var, dict) or not var.get("name"):
            continue
        defaults = [str(d) for d in _as_list(var.get("defaults")) if d]
        default = str(var.get("default") or (defaults[0] if defaults else "*"))
        out[str(var["name"])] = (str(var.get("prefix") or ""), default)
    return out


def _resolve(query: str, defaults: dict[str, tuple[str, str]]) -> str:
    """``$env`` becomes ``env:prod`` (prefix and default) or ``*``; ``$env.value`` the value."""
    if "$" not in query:
        return query

    def swap(match: re.Match[str]) -> str:
        name, value_only = match.group(1), match.group(2)
        if name not in defaults:
            return match.group(0)
        prefix, default = defaults[name]
        if value_only:
            return default
        return "*" if default == "*" or not prefix else f"{prefix}:{default}"

    resolved = _TEMPLATE_VAR.sub(swap, query)
    # A variable left at "*" matches everything: drop it from a scope list it shares with tags.
    while (tidier := _STAR_IN_LIST.sub(lambda m: "{" if "{" in m.group(0) else "", resolved)) != resolved:
        resolved = tidier
    return resolved


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
