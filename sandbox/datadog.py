"""Fake Datadog: renders a scenario world into Datadog's documented JSON.

The official client (datadog-api-client) drops keys it does not know, so every field here
uses the documented name and type: v1 monitors, dashboards and metric queries, v2 logs
search and v2 events. Routes are named after the bot's tools; each answer reports the world
item ids behind it as provenance.

World assumptions worth knowing when writing scenarios:
- one scenario is one environment: an ``env:`` term matches every log unless the log's
  attributes carry an ``env`` of their own;
- a log entry with ``count: n`` is ``n`` events spread evenly over ``[from, to]``;
- a metric is piecewise constant with Gaussian noise seeded by its query and timestamp, so
  the same point always has the same value, whatever window asks for it;
- nothing is served from after ``scenario.now``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sandbox.core import Reply, SandboxContext, SandboxRequest, SystemApp, iso
from sandbox.scenario import Event, LogEntry, MetricSeries, Monitor

MAX_PAGE_LIMIT = 1000
DEFAULT_PAGE_LIMIT = 10
MAX_POINTS = 300
_ROLLUPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 86400)
_STATUS_ALIASES = {"warning": "warn", "err": "error", "crit": "critical", "emerg": "critical"}


def build(ctx: SandboxContext) -> SystemApp:
    app = SystemApp("datadog", ctx, auth=_auth)
    world = ctx.scenario.world

    @app.route("GET", "/api/v1/monitor/{monitor_id}", "datadog.get_monitor")
    async def get_monitor(req: SandboxRequest) -> Reply:
        raw = req.path_params["monitor_id"]
        found = next((m for m in world.monitors if str(m.id) == raw), None)
        if found is None:
            return Reply({"errors": ["Monitor not found"]}, status=404)
        return Reply(_monitor_json(found, ctx), provenance=[str(found.id)])

    @app.route("GET", "/api/v1/dashboard/{dashboard_id}", "datadog.get_dashboard")
    async def get_dashboard(req: SandboxRequest) -> Reply:
        wanted = req.path_params["dashboard_id"]
        found = next((d for d in world.dashboards if d.id == wanted), None)
        if found is None:
            return Reply({"errors": [f"Dashboard with ID {wanted} not found"]}, status=404)
        widgets = [
            {
                "id": _int_id(f"{found.id}|{n}", digits=15),
                "definition": {
                    "type": "timeseries",
                    "title": w.title,
                    "requests": [{"q": w.query, "display_type": "line"}],
                },
            }
            for n, w in enumerate(found.widgets)
        ]
        body = {
            "id": found.id,
            "title": found.title,
            "description": None,
            "layout_type": "ordered",
            "reflow_type": "auto",
            "url": f"/dashboard/{found.id}/{_slug(found.title)}",
            "author_handle": "sandbox@example.com",
            "author_name": "Sandbox",
            "created_at": iso(ctx.now - timedelta(days=90)),
            "modified_at": iso(ctx.now - timedelta(days=7)),
            "is_read_only": False,
            "notify_list": [],
            "template_variables": [],
            "tags": None,
            "widgets": widgets,
        }
        return Reply(body, provenance=[found.id])

    @app.route("GET", "/api/v1/query", "datadog.query_metrics")
    async def query_metrics(req: SandboxRequest) -> Reply:
        query = req.q("query")
        try:
            start = int(req.q("from") or "")
            end = int(req.q("to") or "")
        except ValueError:
            return _bad_request("'from' and 'to' must be POSIX timestamps in seconds")
        if not query:
            return _bad_request("'query' is required")
        if end < start:
            return _bad_request("'to' must be after 'from'")
        series = _find_series(world.metrics, query)
        rendered = [] if series is None else [_render_series(series, query, start, end, ctx.now)]
        provenance = [series.id] if series is not None and series.id else []
        body = {
            "status": "ok",
            "res_type": "time_series",
            "resp_version": 1,
            "query": query,
            "from_date": start * 1000,
            "to_date": end * 1000,
            "group_by": [],
            "message": "",
            "series": rendered,
        }
        return Reply(body, provenance=provenance)

    @app.route("GET", "/api/v1/search", "datadog.search_metrics")
    async def search_metrics(req: SandboxRequest) -> Reply:
        query = req.q("q") or ""
        if not query.startswith("metrics:"):
            return _bad_request("'q' must look like metrics:<name prefix>")
        prefix = query.removeprefix("metrics:").strip()
        names = sorted({_metric_and_scope(m.query)[0] for m in world.metrics})
        found = [name for name in names if prefix and name.startswith(prefix)]
        items = [m.id for m in world.metrics if m.id and _metric_and_scope(m.query)[0] in found]
        return Reply({"results": {"metrics": found}}, provenance=items)

    @app.route("POST", "/api/v2/logs/events/search", "datadog.search_logs")
    async def search_logs(req: SandboxRequest) -> Reply:
        try:
            body = req.json() or {}
        except ValueError:
            return _bad_request("request body is not valid JSON")
        if not isinstance(body, dict):
            return _bad_request("request body must be a JSON object")
        flt = body.get("filter") or {}
        page = body.get("page") or {}
        try:
            query = _parse_query(str(flt.get("query") or "*"))
            start = _parse_time(flt.get("from", "now-15m"), ctx.now)
            end = _parse_time(flt.get("to", "now"), ctx.now)
            limit = _page_limit(page.get("limit"))
        except ValueError as exc:
            return _bad_request(str(exc))
        sort = body.get("sort", "-timestamp")
        if sort not in ("timestamp", "-timestamp"):
            return _bad_request("sort must be 'timestamp' or '-timestamp'")
        matched = [
            e for e in _expand_logs(world.logs, ctx.now)
            if start <= e.at <= end and query.matches_log(e)
        ]
        matched.sort(key=lambda e: (e.at, e.log_id), reverse=sort == "-timestamp")
        scope = f"logs|{flt.get('query')}|{start}|{end}|{sort}"
        try:
            offset = _decode_cursor(page.get("cursor"), scope)
        except ValueError as exc:
            return _bad_request(str(exc))
        chunk = matched[offset:offset + limit]
        after = _encode_cursor(offset + limit, scope) if offset + limit < len(matched) else None
        base = ctx.urls.get("datadog", "")
        return Reply(
            {
                "data": [_log_json(e) for e in chunk],
                "links": {"next": f"{base}/api/v2/logs/events?page%5Bcursor%5D={after}"} if after else {},
                "meta": _meta(after, scope),
            },
            provenance=_unique(e.entry_id for e in chunk if e.entry_id),
        )

    @app.route("GET", "/api/v2/events", "datadog.list_events")
    async def list_events(req: SandboxRequest) -> Reply:
        try:
            query = _parse_query(req.q("filter[query]") or "*")
            start = _parse_time(req.q("filter[from]") or "now-15m", ctx.now)
            end = _parse_time(req.q("filter[to]") or "now", ctx.now)
            limit = _page_limit(req.q("page[limit]"))
        except ValueError as exc:
            return _bad_request(str(exc))
        sort = req.q("sort") or "timestamp"
        if sort not in ("timestamp", "-timestamp"):
            return _bad_request("sort must be 'timestamp' or '-timestamp'")
        indexed = [(n, e) for n, e in enumerate(world.events)
                   if start <= e.at <= end and e.at <= ctx.now and query.matches_event(e)]
        indexed.sort(key=lambda pair: (pair[1].at, pair[0]), reverse=sort == "-timestamp")
        scope = f"events|{req.q('filter[query]')}|{start}|{end}|{sort}"
        try:
            offset = _decode_cursor(req.q("page[cursor]"), scope)
        except ValueError as exc:
            return _bad_request(str(exc))
        chunk = indexed[offset:offset + limit]
        after = _encode_cursor(offset + limit, scope) if offset + limit < len(indexed) else None
        base = ctx.urls.get("datadog", "")
        return Reply(
            {
                "data": [_event_json(n, e) for n, e in chunk],
                "links": {"next": f"{base}/api/v2/events?page%5Bcursor%5D={after}"} if after else {},
                "meta": _meta(after, scope),
            },
            provenance=[e.id for _, e in chunk if e.id],
        )

    return app


def _auth(req: SandboxRequest) -> Reply | None:
    # Datadog answers a missing or empty API key with a bare 403 before looking at the route.
    if not req.headers.get("dd-api-key"):
        return Reply({"errors": ["Forbidden"]}, status=403)
    return None


def _bad_request(message: str) -> Reply:
    return Reply({"errors": [message]}, status=400)


# --- monitors -------------------------------------------------------------------------


def _monitor_json(m: Monitor, ctx: SandboxContext) -> dict[str, Any]:
    group: dict[str, Any] = {"name": "*", "status": m.status}
    if m.triggered_at is not None:
        group["last_triggered_ts"] = int(m.triggered_at.timestamp())
        group["last_notified_ts"] = int(m.triggered_at.timestamp())
    return {
        "id": m.id,
        "name": m.name,
        "type": "query alert",
        "query": m.query,
        "message": f"{m.name} @pagerduty",
        "tags": list(m.tags),
        "options": {"notify_no_data": False, "thresholds": {}},
        "overall_state": m.status,
        "priority": None,
        "multi": False,
        "restricted_roles": None,
        "created": iso(ctx.now - timedelta(days=120)),
        "modified": iso(ctx.now - timedelta(days=30)),
        "creator": {"email": "sandbox@example.com", "handle": "sandbox@example.com", "name": "Sandbox"},
        "state": {"groups": {"*": group}},
    }


# --- metrics --------------------------------------------------------------------------


def _squash(query: str) -> str:
    return "".join(query.split())


def _find_series(metrics: list[MetricSeries], query: str) -> MetricSeries | None:
    exact = next((m for m in metrics if m.query == query), None)
    if exact is not None:
        return exact
    squashed = _squash(query)
    same = next((m for m in metrics if _squash(m.query) == squashed), None)
    if same is not None or not squashed.endswith("{*}"):
        return same
    # `agg:metric{*}` aggregates every scope of the metric; the world holds one scope per metric
    # at most in practice, so that series is the aggregate.
    prefix = squashed[:-2]
    return next((m for m in metrics if _squash(m.query).startswith(prefix)), None)


def _rollup(span_s: int) -> int:
    for step in _ROLLUPS:
        if span_s / step <= MAX_POINTS:
            return step
    return _ROLLUPS[-1]


def _value_at(series: MetricSeries, t: datetime) -> float | None:
    current = None
    for seg in sorted(series.segments, key=lambda s: s.from_):
        if seg.from_ <= t:
            current = seg
    if current is None:
        return None
    value = current.value
    if current.noise:
        # Seeded by query and time: the same point has the same value in every window.
        value += random.Random(f"{series.query}|{int(t.timestamp())}").gauss(0.0, current.noise)
        if current.value >= 0:
            value = max(value, 0.0)
    return round(value, 6)


def _render_series(series: MetricSeries, asked: str, start: int, end: int, now: datetime) -> dict[str, Any]:
    end = min(end, int(now.timestamp()))
    step = _rollup(max(end - start, 1))
    first = -(-start // step) * step
    points: list[list[float]] = []
    for ts in range(first, end + 1, step):
        value = _value_at(series, datetime.fromtimestamp(ts, UTC))
        if value is not None:
            points.append([float(ts * 1000), value])
    metric, scope = _metric_and_scope(series.query)
    aggr = series.query.split(":", 1)[0] if ":" in series.query.split("{", 1)[0] else None
    unit: list[dict[str, Any] | None] = [None, None]
    if series.unit:
        unit = [{"family": "general", "name": series.unit, "plural": f"{series.unit}s",
                 "scale_factor": 1.0, "short_name": series.unit}, None]
    return {
        "aggr": aggr,
        "display_name": series.name or metric,
        "metric": metric,
        "expression": asked,
        "scope": scope,
        "tag_set": [],
        "query_index": 0,
        "interval": step,
        "length": len(points),
        "start": int(points[0][0]) if points else start * 1000,
        "end": int(points[-1][0]) if points else end * 1000,
        "pointlist": points,
        "unit": unit,
    }


def _metric_and_scope(query: str) -> tuple[str, str]:
    found = re.search(r"(?:^|:)([A-Za-z0-9_.]+)\{([^}]*)\}", query)
    if not found:
        return query, "*"
    return found.group(1), found.group(2) or "*"


# --- logs and events ------------------------------------------------------------------


@dataclass(frozen=True)
class _LogEvent:
    entry: LogEntry
    entry_id: str | None
    log_id: str
    at: datetime


def _expand_logs(entries: list[LogEntry], now: datetime) -> list[_LogEvent]:
    out: list[_LogEvent] = []
    for n, entry in enumerate(entries):
        key = entry.id or f"log{n}"
        span = (entry.to - entry.from_).total_seconds()
        for i in range(entry.count):
            offset = span * i / (entry.count - 1) if entry.count > 1 else 0.0
            at = entry.from_ + timedelta(seconds=offset)
            if at <= now:
                out.append(_LogEvent(entry, entry.id, _opaque_id("AQAAA", f"{key}|{i}"), at))
    return out


def _log_json(e: _LogEvent) -> dict[str, Any]:
    entry = e.entry
    env = entry.attributes.get("env")
    tags = [f"service:{entry.service}", "source:sandbox"] + ([f"env:{env}"] if env else [])
    return {
        "id": e.log_id,
        "type": "log",
        "attributes": {
            "timestamp": e.at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "service": entry.service,
            "status": entry.status,
            "message": entry.message,
            "host": str(entry.attributes.get("host", f"{entry.service}-host")),
            "tags": tags,
            "attributes": dict(entry.attributes),
        },
    }


def _event_json(n: int, e: Event) -> dict[str, Any]:
    key = e.id or f"event{n}"
    source = next((t.split(":", 1)[1] for t in e.tags if t.startswith("source:")), "sandbox")
    service = next((t.split(":", 1)[1] for t in e.tags if t.startswith("service:")), None)
    ms = int(e.at.timestamp() * 1000)
    inner: dict[str, Any] = {
        "evt": {"id": str(_int_id(key, digits=19)), "name": e.title, "source_id": _int_id(source, digits=4),
                "type": source},
        "title": e.title,
        "timestamp": ms,
        "priority": "normal",
        "status": "info",
        "source_type_name": source,
        "tags": list(e.tags),
    }
    if service:
        inner["service"] = service
    return {
        "id": _opaque_id("AAAAA", key),
        "type": "event",
        "attributes": {"attributes": inner, "message": e.text, "tags": list(e.tags),
                       "timestamp": iso(e.at)},
    }


def _meta(after: str | None, scope: str) -> dict[str, Any]:
    page = {"after": after} if after else {}
    request_id = hashlib.sha256(f"{scope}|{after}".encode()).hexdigest()[:24]
    return {"elapsed": 12, "page": page, "request_id": request_id, "status": "done", "warnings": []}


# --- the search syntax ------------------------------------------------------------------

_TOKEN = re.compile(r'(-)?(@?[\w.\-]+):\(([^)]*)\)|(-)?(@?[\w.\-]+):("[^"]*"|\S+)|(-)?("[^"]*"|\S+)')


@dataclass(frozen=True)
class _Term:
    key: str | None  # None: free text over the message or title
    values: tuple[str, ...]
    negated: bool

    def test(self, actual: list[str]) -> bool:
        hit = any(_wild(v, a) for v in self.values for a in actual)
        return hit != self.negated


@dataclass(frozen=True)
class _Query:
    """A conjunction of terms: ``key:value``, ``key:(a OR b)``, ``-key:v``, free text."""

    terms: tuple[_Term, ...]

    def matches_log(self, e: _LogEvent) -> bool:
        entry = e.entry
        for term in self.terms:
            if term.key is None:
                actual = [entry.message]
            elif term.key == "service":
                actual = [entry.service]
            elif term.key == "status":
                actual = [entry.status]
            elif term.key == "env" and "env" not in entry.attributes:
                continue  # one scenario is one environment (see module docstring)
            else:
                found = _attribute(entry.attributes, term.key.lstrip("@"))
                if found is None:
                    if term.negated:
                        continue
                    return False
                actual = [str(found)]
            if not term.test(actual):
                return False
        return True

    def matches_event(self, e: Event) -> bool:
        for term in self.terms:
            if term.key is None:
                actual = [e.title, e.text]
            else:
                actual = [t.split(":", 1)[1] for t in e.tags if t.split(":", 1)[0] == term.key]
                if not actual and not term.negated:
                    return False
            if not term.test(actual):
                return False
        return True


def _parse_query(text: str) -> _Query:
    terms: list[_Term] = []
    for m in _TOKEN.finditer(text):
        if m.group(2):
            values = tuple(v.strip() for v in re.split(r"\s+OR\s+", m.group(3)) if v.strip())
            if not values:
                raise ValueError(f"empty value list in query: {text!r}")
            terms.append(_Term(m.group(2).lower(), _norm_values(m.group(2), values), bool(m.group(1))))
        elif m.group(5):
            terms.append(_Term(m.group(5).lower(), _norm_values(m.group(5), (m.group(6).strip('"'),)),
                               bool(m.group(4))))
        else:
            word = m.group(8)
            if word in ("AND", "OR", "*") or not word:
                continue  # top level is a conjunction; "*" means everything
            terms.append(_Term(None, (f"*{word.strip(chr(34))}*",), bool(m.group(7))))
    return _Query(tuple(terms))


def _norm_values(key: str, values: tuple[str, ...]) -> tuple[str, ...]:
    if key.lower() == "status":
        return tuple(_STATUS_ALIASES.get(v.lower(), v.lower()) for v in values)
    return tuple(v.strip('"') for v in values)


def _wild(pattern: str, actual: str) -> bool:
    rx = "".join(".*" if ch == "*" else re.escape(ch) for ch in pattern)
    return re.fullmatch(rx, actual, flags=re.IGNORECASE | re.DOTALL) is not None


def _attribute(attrs: dict[str, Any], path: str) -> Any:
    current: Any = attrs
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


# --- small helpers ----------------------------------------------------------------------

_RELATIVE = re.compile(r"now(?:-(\d+)([smhdw]))?")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_time(value: Any, now: datetime) -> datetime:
    """Datadog accepts ISO 8601, epoch milliseconds and ``now-15m`` style times."""
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    if rel := _RELATIVE.fullmatch(text):
        amount, unit = rel.group(1), rel.group(2)
        return now - timedelta(seconds=int(amount) * _UNITS[unit]) if amount else now
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"invalid time {text!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _page_limit(raw: Any) -> int:
    if raw in (None, ""):
        return DEFAULT_PAGE_LIMIT
    try:
        limit = int(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError("page limit must be an integer") from exc
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ValueError(f"page limit must be between 1 and {MAX_PAGE_LIMIT}")
    return limit


def _encode_cursor(offset: int, scope: str) -> str:
    raw = json.dumps({"o": offset, "s": hashlib.sha256(scope.encode()).hexdigest()[:10]})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any, scope: str) -> int:
    if not cursor:
        return 0
    try:
        text = str(cursor)
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        offset = int(raw["o"])
        same_search = raw["s"] == hashlib.sha256(scope.encode()).hexdigest()[:10]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("invalid page cursor") from exc
    if not same_search or offset < 0:
        raise ValueError("page cursor belongs to another search")
    return offset


def _opaque_id(prefix: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()[:24]
    return prefix + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _int_id(key: str, digits: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % (10 ** digits)


def _slug(title: str) -> str:
    return quote(re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"))


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))
