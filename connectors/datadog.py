"""Datadog, read-only: monitors, dashboards, metrics, logs and events as `Evidence`.

Built on the official ``datadog-api-client`` (async, aiosonic underneath). Read-only at the
wire: the client's rest layer is replaced by a subclass that checks every request against
an allowlist of ``(METHOD, path)`` pairs before aiosonic sees it, so a forbidden call raises
`WireRefused` without a byte leaving the process.

The client's own retry reads ``X-Ratelimit-Reset`` only and retries a fixed set of methods,
so it is off and the connectors' one `RetryPolicy` applies: bounded, on 429, 5xx, timeouts and
transport errors, honouring ``Retry-After``. Every failure leaves as `SourceUnavailable` with a
short reason a person can read ("HTTP 500 after 3 attempts", "timed out after 3 attempts",
"malformed JSON in response").
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from aiosonic.exceptions import AiosonicError, BaseTimeout  # type: ignore[import-untyped]
from datadog_api_client import AsyncApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ApiTypeError, ApiValueError
from datadog_api_client.model_utils import model_to_dict
from datadog_api_client.rest import AsyncRESTClientObject
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.metrics_api import MetricsApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_type import MonitorType
from datadog_api_client.v2.api.events_api import EventsApi
from datadog_api_client.v2.api.logs_api import LogsApi
from datadog_api_client.v2.model.events_sort import EventsSort
from datadog_api_client.v2.model.logs_list_request import LogsListRequest
from datadog_api_client.v2.model.logs_list_request_page import LogsListRequestPage
from datadog_api_client.v2.model.logs_query_filter import LogsQueryFilter
from datadog_api_client.v2.model.logs_sort import LogsSort

from bot.core.config import DatadogSettings
from bot.core.errors import ConfigError, SourceUnavailable, WireRefused
from bot.core.models import Evidence, EvidenceKind, Provenance, Source, TimeWindow, evidence_id
from connectors._http import Allowlist, base_path
from connectors._retry import Failed, RetryPolicy
from connectors.log_patterns import LogLine, PatternStats, mine

SOURCE = "datadog"
# The whole of what this connector may send. Anything else is refused before sending.
ALLOWED: tuple[tuple[str, str], ...] = (
    ("GET", "/api/v1/monitor/{monitor_id}"),
    ("GET", "/api/v1/dashboard/{dashboard_id}"),
    ("GET", "/api/v1/query"),
    ("GET", "/api/v1/search"),
    ("POST", "/api/v2/logs/events/search"),
    ("GET", "/api/v2/events"),
)
LOG_PAGE_LIMIT = 1000  # Datadog's maximum for one logs page
EVENT_PAGE_LIMIT = 100
MAX_EVENTS = 50  # events are individually cited: a flood helps nobody
EXCERPT_TEXT_CHARS = 280


_SATURATION_WORDS = ("cpu", "mem", "heap", "connections", "pool", "latency", "queue", "rejected", "evicted")


def _saturation_rank(name: str) -> tuple[int, str]:
    """Saturation-like metric names first (the ones that explain a dependency slowing down)."""
    lowered = name.lower()
    hit = next((i for i, word in enumerate(_SATURATION_WORDS) if word in lowered), len(_SATURATION_WORDS))
    return hit, name


class _ReadOnlyRest(AsyncRESTClientObject):
    """The client's rest layer with the allowlist in front: the one seam every call passes."""

    def __init__(self, configuration: Configuration, allowlist: Allowlist) -> None:
        super().__init__(configuration)
        self._allowlist = allowlist

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        path = urlsplit(url).path
        self._allowlist.check(method, path)
        # `{monitor_id}` would also match /monitor/search and /monitor/can_delete: ids are digits.
        tail = path.rsplit("/api/v1/monitor/", 1)
        if len(tail) == 2 and not tail[1].isdigit():
            raise WireRefused(SOURCE, method.upper(), path)
        return await super().request(method, url, *args, **kwargs)


class _ReadOnlyApiClient(AsyncApiClient):
    def __init__(self, configuration: Configuration, allowlist: Allowlist) -> None:
        self._allowlist = allowlist  # read by _build_rest_client during super().__init__
        super().__init__(configuration)

    def _build_rest_client(self) -> _ReadOnlyRest:
        return _ReadOnlyRest(self.configuration, self._allowlist)


class DatadogConnector:
    """One Datadog organisation. Each public method is one tool and returns evidence."""

    def __init__(self, settings: DatadogSettings, *, log_page_limit: int = LOG_PAGE_LIMIT) -> None:
        if not 1 <= log_page_limit <= LOG_PAGE_LIMIT:
            raise ConfigError(f"log_page_limit must be 1..{LOG_PAGE_LIMIT}")
        self.settings = settings
        self.allowlist = Allowlist(SOURCE, ALLOWED, base_path=base_path(settings.base_url))
        self._log_page_limit = log_page_limit
        self._retry = RetryPolicy(settings.max_retries)
        self._client: _ReadOnlyApiClient | None = None

    # --- lifecycle ------------------------------------------------------------------

    def _api(self) -> _ReadOnlyApiClient:
        # Built lazily so it belongs to the running event loop (aiosonic pools are per loop).
        if self._client is None:
            # An empty key is left out, not sent empty: the client would refuse to build the
            # request at all, and Datadog's own 403 is the clearer answer.
            keys = {"apiKeyAuth": self.settings.token.get_secret_value(),
                    "appKeyAuth": self.settings.app_key.get_secret_value()}
            config = Configuration(
                host=self.settings.base_url.rstrip("/"),
                api_key={name: key for name, key in keys.items() if key},
                request_timeout=self.settings.timeout_s,
                enable_retry=False,
            )
            self._client = _ReadOnlyApiClient(config, self.allowlist)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)

    async def __aenter__(self) -> DatadogConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- tools ------------------------------------------------------------------------

    async def get_monitor(self, monitor_id: int) -> list[Evidence]:
        """Tool ``datadog.get_monitor``: the monitor that fired, with its query and state."""
        tool = "datadog.get_monitor"
        api = MonitorsApi(self._api())
        raw = await self._call(tool, lambda: api.get_monitor(monitor_id, group_states="all"))
        m = _plain(raw)
        mid = int(m.get("id", monitor_id))
        status = str(m.get("overall_state") or "unknown")
        triggered = _last_triggered(m)
        when = f", last triggered {_hhmm(triggered)}" if triggered else ""
        return [Evidence(
            id=evidence_id(EvidenceKind.MONITOR, str(mid)),
            kind=EvidenceKind.MONITOR,
            source=Source.DATADOG,
            title=f"Monitor: {m.get('name') or mid}",
            excerpt=f"Monitor is {status}{when}. Query: {_clip(str(m.get('query') or ''))}",
            timestamp=triggered,
            link=f"{self.settings.link_base}/monitors/{mid}",
            provenance=self._prov(tool, f"GET /api/v1/monitor/{mid}?group_states=all"),
            ref={"monitor_id": str(mid)},
            data={"monitor_id": mid, "query": str(m.get("query") or ""), "status": status,
                  "tags": [str(t) for t in m.get("tags") or []], "name": str(m.get("name") or "")},
        )]

    async def get_dashboards(self, dashboard_ids: list[str], window: TimeWindow) -> list[Evidence]:
        """Tool ``datadog.get_dashboard`` per id, then each distinct widget query as a metric."""
        tool = "datadog.get_dashboard"
        api = DashboardsApi(self._api())
        out: list[Evidence] = []
        queries: list[str] = []
        for dashboard_id in dict.fromkeys(dashboard_ids):
            raw = await self._call(tool, partial(api.get_dashboard, dashboard_id))
            dash = _plain(raw)
            widgets = _widget_queries(dash.get("widgets") or [])
            queries += [w["query"] for w in widgets]
            names = ", ".join(w["title"] for w in widgets) or "no timeseries widgets"
            out.append(Evidence(
                id=evidence_id(EvidenceKind.DASHBOARD, dashboard_id),
                kind=EvidenceKind.DASHBOARD,
                source=Source.DATADOG,
                title=f"Dashboard: {dash.get('title') or dashboard_id}",
                excerpt=_clip(f"{len(widgets)} timeseries widgets: {names}"),
                link=f"{self.settings.link_base}/dashboard/{dashboard_id}?" + _range_qs(window),
                provenance=self._prov(tool, f"GET /api/v1/dashboard/{dashboard_id}"),
                ref={"dashboard_id": dashboard_id},
                data={"dashboard_id": dashboard_id, "widgets": widgets},
            ))
        return out + await self.query_metrics(queries, window)

    async def query_metrics(self, queries: list[str], window: TimeWindow) -> list[Evidence]:
        """Tool ``datadog.query_metrics``: each distinct query from baseline_start to end."""
        tool = "datadog.query_metrics"
        api = MetricsApi(self._api())
        start, end = int(window.baseline_start.timestamp()), int(window.end.timestamp())
        out: list[Evidence] = []
        for query in dict.fromkeys(q.strip() for q in queries if q.strip()):
            raw = await self._call(tool, partial(api.query_metrics, _from=start, to=end, query=query))
            for series in _plain(raw).get("series") or []:
                out.append(self._metric_evidence(query, series, window, tool, start, end))
        return out

    async def dependency_metrics(self, upstream: str, prefixes: list[str], window: TimeWindow,
                                 limit: int = 3) -> list[Evidence]:
        """Saturation metrics of a dependency the logs point at (e.g. ``elasticsearch.``), found
        by metric-name search and queried per scope: the follow-up an SRE does by hand."""
        tool = "datadog.query_metrics"
        api = MetricsApi(self._api())
        names: list[str] = []
        for prefix in prefixes:
            raw = await self._call(tool, partial(api.list_metrics, q=f"metrics:{prefix}"))
            names += [str(n) for n in (_plain(raw).get("results") or {}).get("metrics") or []]
        ranked = sorted(dict.fromkeys(names), key=_saturation_rank)[:limit]
        del upstream  # the prefixes name it; kept in the signature for the audit args
        return await self.query_metrics([f"avg:{name}{{*}}" for name in ranked], window)

    async def search_logs(self, service: str, env: str, window: TimeWindow) -> list[Evidence]:
        """Tool ``datadog.search_logs``: errors and warnings, mined into templates."""
        tool = "datadog.search_logs"
        query = f"service:{service} env:{env} status:(error OR warn)"
        lines, truncated = await self._fetch_logs(tool, query, window)
        patterns = mine(lines, split_at=window.start)
        link = f"{self.settings.link_base}/logs?" + urlencode({"query": query}) + "&" + _range_qs(window)
        prov = self._prov(tool, "POST /api/v2/logs/events/search " + query)
        return [self._pattern_evidence(p, service, env, window, link, prov, truncated, len(lines))
                for p in patterns]

    async def list_events(self, service: str, window: TimeWindow) -> list[Evidence]:
        """Tool ``datadog.list_events``: deploys, config changes and flags tagged with the
        service, from baseline_start to end, newest first."""
        tool = "datadog.list_events"
        api = EventsApi(self._api())
        query = f"service:{service}"
        start_ms = str(int(window.baseline_start.timestamp() * 1000))
        end_ms = str(int(window.end.timestamp() * 1000))
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(self.settings.max_pages):
            kwargs: dict[str, Any] = {"filter_query": query, "filter_from": start_ms, "filter_to": end_ms,
                                      "sort": EventsSort.TIMESTAMP_DESCENDING, "page_limit": EVENT_PAGE_LIMIT}
            if cursor:
                kwargs["page_cursor"] = cursor
            page = _plain(await self._call(tool, partial(api.list_events, **kwargs)))
            items += page.get("data") or []
            cursor = ((page.get("meta") or {}).get("page") or {}).get("after")
            if not cursor or len(items) >= MAX_EVENTS:
                break
        link_base = f"{self.settings.link_base}/event/explorer?" + urlencode({"query": query})
        prov = self._prov(tool, f"GET /api/v2/events?filter[query]={query}")
        return [self._event_evidence(item, link_base, window, prov) for item in items[:MAX_EVENTS]]

    async def write_probe(self) -> str:
        """For ``doctor``: try a real write through the same client; return the refusal."""
        body = Monitor(name="incident-brief doctor write probe", type=MonitorType.METRIC_ALERT,
                       query="avg(last_5m):avg:system.cpu.user{*} > 100", message="write probe")
        create = MonitorsApi(self._api()).create_monitor
        try:
            await cast(Awaitable[Any], create(body=body))
        except WireRefused as refused:
            return refused.reason
        except Exception as exc:  # reached the wire at all: that is the failure being probed for
            raise ConfigError(f"datadog: a write (POST /api/v1/monitor) was sent: {exc!r}") from exc
        raise ConfigError("datadog: a write (POST /api/v1/monitor) was NOT refused by the allowlist")

    # --- wire discipline --------------------------------------------------------------

    async def _call(self, tool: str, make: Callable[[], Any]) -> Any:
        """Run one client call (a coroutine in async mode, though typed as sync) under the retry
        policy, each attempt bounded by ``timeout_s``."""

        async def attempt() -> Any:
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    return await make()
            except ApiException as exc:
                status = int(exc.status or 0)
                if status == 429 or status >= 500:
                    raise Failed(f"HTTP {status}", retry_after=_header(exc.headers, "Retry-After")) from exc
                raise SourceUnavailable(SOURCE, self._client_error(status), tool) from exc
            except (ApiTypeError, ApiValueError) as exc:
                raise SourceUnavailable(SOURCE, _shape_error(exc), tool) from exc
            except (TimeoutError, BaseTimeout) as exc:  # ours (asyncio) or aiosonic's own
                raise Failed("timed out") from exc
            except ConnectionRefusedError as exc:
                raise Failed("connection refused") from exc
            except (OSError, AiosonicError) as exc:
                raise Failed(f"transport error ({type(exc).__name__})") from exc

        return await self._retry.acall(attempt, source=SOURCE, tool=tool)

    async def _fetch_logs(self, tool: str, query: str, window: TimeWindow) -> tuple[list[LogLine], bool]:
        api = LogsApi(self._api())
        lines: list[LogLine] = []
        cursor: str | None = None
        for _ in range(self.settings.max_pages):
            page_args: dict[str, Any] = {"limit": self._log_page_limit}
            if cursor:
                page_args["cursor"] = cursor
            body = LogsListRequest(
                filter=LogsQueryFilter(query=query, _from=_iso(window.baseline_start), to=_iso(window.end),
                                       indexes=["*"]),
                page=LogsListRequestPage(**page_args),
                # Newest first: when the page bound cuts, it cuts the old baseline, not the incident.
                sort=LogsSort.TIMESTAMP_DESCENDING,
            )
            page = _plain(await self._call(tool, partial(api.list_logs, body=body)))
            lines += [_log_line(item) for item in page.get("data") or []]
            cursor = ((page.get("meta") or {}).get("page") or {}).get("after")
            if not cursor:
                return lines, False
        return lines, True

    def _client_error(self, status: int) -> str:
        if status in (401, 403):
            missing = [name for name, key in (("API", self.settings.token), ("application", self.settings.app_key))
                       if not key.get_secret_value()]
            hint = f" (no {' or '.join(missing)} key is configured)" if missing else ""
            return f"HTTP {status}: check the Datadog API and application keys{hint}"
        if status == 404:
            return "HTTP 404: not found"
        return f"HTTP {status}"

    # --- normalisation ----------------------------------------------------------------

    def _prov(self, tool: str, request: str) -> Provenance:
        return Provenance(system=Source.DATADOG, tool=tool, request=request, fetched_at=datetime.now(UTC))

    def _metric_evidence(self, query: str, series: dict[str, Any], window: TimeWindow, tool: str,
                         start: int, end: int) -> Evidence:
        points = [[int(p[0]) // 1000, float(p[1])] for p in series.get("pointlist") or []
                  if len(p) >= 2 and p[0] is not None and p[1] is not None]
        unit = _unit(series.get("unit"))
        summary = describe_levels(points, window, unit)
        metric = str(series.get("metric") or query)
        scope = str(series.get("scope") or "*")
        link = f"{self.settings.link_base}/metric/explorer?" + urlencode(
            {"exp_metric": metric, "exp_scope": scope}) + "&" + _range_qs(window)
        return Evidence(
            id=evidence_id(EvidenceKind.METRIC, query),
            kind=EvidenceKind.METRIC,
            source=Source.DATADOG,
            title=f"Metric: {_clip(query, 120)}",
            excerpt=summary.text,
            timestamp=summary.changed_at,
            link=link,
            provenance=self._prov(tool, f"GET /api/v1/query?from={start}&to={end}&query={query}"),
            ref={"query": query},
            data={"query": query, "points": points, "unit": unit,
                  "before": summary.before, "after": summary.after,
                  "changed_at": summary.changed_at.isoformat() if summary.changed_at else None},
        )

    def _pattern_evidence(self, p: PatternStats, service: str, env: str, window: TimeWindow, link: str,
                          prov: Provenance, truncated: bool, fetched: int) -> Evidence:
        novelty = "new since the baseline" if p.is_new else f"{p.count_before} in the baseline before"
        noun = "event" if p.count == 1 else "events"
        excerpt = (f"{p.count} {p.status} {noun} from {_hhmm(window.start)} to {_hhmm(window.end)} "
                   f"({novelty}); first seen {_hhmm(p.first_seen)}, last seen {_hhmm(p.last_seen)}. "
                   f"Pattern: {_clip(p.template, 160)}. Sample: {_clip(p.sample, 200)}")
        if truncated:
            excerpt = f"[partial: only the newest {fetched} events were read] " + excerpt
        return Evidence(
            id=evidence_id(EvidenceKind.LOG_PATTERN, f"{service}|{env}|{p.template}"),
            kind=EvidenceKind.LOG_PATTERN,
            source=Source.DATADOG,
            title=f"Log pattern ({p.status}, {p.count} in window): {_clip(p.template, 100)}",
            excerpt=excerpt,
            timestamp=p.first_seen,
            link=link,
            provenance=prov,
            ref={"sample": p.sample},
            data={"template": p.template, "sample": p.sample, "count": p.count, "status": p.status,
                  "first_seen": p.first_seen.isoformat(), "last_seen": p.last_seen.isoformat(),
                  "count_before": p.count_before, "truncated": truncated},
        )

    def _event_evidence(self, item: dict[str, Any], link_base: str, window: TimeWindow,
                        prov: Provenance) -> Evidence:
        attrs = item.get("attributes") or {}
        inner = attrs.get("attributes") or {}
        event_id = str(item.get("id") or (inner.get("evt") or {}).get("id") or "")
        tags = [str(t) for t in attrs.get("tags") or inner.get("tags") or []]
        title = str(inner.get("title") or (inner.get("evt") or {}).get("name") or "event")
        at = _as_datetime(attrs.get("timestamp"))
        source = next((t.split(":", 1)[1] for t in tags if t.startswith("source:")),
                      inner.get("source_type_name"))
        text = str(attrs.get("message") or "")
        excerpt = f"{title} at {_hhmm(at) if at else 'unknown time'}" + (f": {_clip(text)}" if text else "")
        return Evidence(
            id=evidence_id(EvidenceKind.EVENT, event_id),
            kind=EvidenceKind.EVENT,
            source=Source.DATADOG,
            title=f"Event: {_clip(title, 120)}",
            excerpt=excerpt,
            timestamp=at,
            link=f"{link_base}&{urlencode({'event': event_id})}&{_range_qs(window)}",
            provenance=prov,
            ref={"event_id": event_id, "title": title},
            data={"event_id": event_id, "tags": tags, "source": str(source) if source else None},
        )


# --- metric levels, in plain words ----------------------------------------------------


class LevelSummary:
    """Before/after levels of a series around the alert, and roughly when it changed."""

    def __init__(self, text: str, before: float | None, after: float | None,
                 changed_at: datetime | None) -> None:
        self.text = text
        self.before = before
        self.after = after
        self.changed_at = changed_at


def describe_levels(points: list[list[Any]], window: TimeWindow, unit: str | None) -> LevelSummary:
    """Median level before the window vs. since the alert (or the last few points)."""
    if not points:
        return LevelSummary("No data points in the window.", None, None, None)
    start_s, alert_s = window.start.timestamp(), window.alert_at.timestamp()
    before = [v for t, v in points if t < start_s]
    after = [v for t, v in points if t >= alert_s] or [v for _, v in points[-5:]]
    b = statistics.median(before) if before else None
    a = statistics.median(after)
    u = f" {unit}" if unit else ""
    peak = max(v for t, v in points if t >= start_s) if any(t >= start_s for t, _ in points) else a
    if b is None:
        return LevelSummary(f"About {_num(a)}{u} since the alert (peak {_num(peak)}{u}); "
                            "no data before the window to compare with.", None, a, None)
    changed = _change_time(points, b, a)
    if changed is None:
        text = f"Steady at about {_num(a)}{u} (about {_num(b)}{u} before the window; peak {_num(peak)}{u})."
    else:
        direction = "rose" if a > b else "fell"
        ratio = f", {a / b:.1f}x" if b > 0 and a > b else ""
        text = (f"{direction.capitalize()} from about {_num(b)}{u} before the window to about {_num(a)}{u} "
                f"since the alert{ratio}; the change began around {_hhmm(changed)} (peak {_num(peak)}{u}).")
    return LevelSummary(text, b, a, changed)


def _change_time(points: list[list[Any]], before: float, after: float) -> datetime | None:
    """The first point from which most later points sit nearer the new level than the old."""
    gap = abs(after - before)
    if gap <= max(abs(before) * 0.2, 1e-9):
        return None
    nearer_new = [abs(v - after) < abs(v - before) for _, v in points]
    remaining = 0
    suffix = [0] * (len(points) + 1)
    for i in range(len(points) - 1, -1, -1):
        remaining += nearer_new[i]
        suffix[i] = remaining
    for i, (t, _) in enumerate(points):
        if nearer_new[i] and suffix[i] >= 0.8 * (len(points) - i):
            return datetime.fromtimestamp(t, UTC)
    return None


# --- small helpers --------------------------------------------------------------------


def _plain(model: Any) -> dict[str, Any]:
    """A client model as plain dicts and lists (documented field names, datetimes kept)."""
    data = model_to_dict(model, serialize=False)
    return data if isinstance(data, dict) else {}


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


def _log_line(item: dict[str, Any]) -> LogLine:
    attrs = item.get("attributes") or {}
    at = _as_datetime(attrs.get("timestamp")) or datetime.fromtimestamp(0, UTC)
    return LogLine(message=str(attrs.get("message") or ""), status=str(attrs.get("status") or "info"),
                   timestamp=at)


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


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def _shape_error(exc: ApiTypeError | ApiValueError) -> str:
    # The client files what it could not parse under 'received_data'; anything else was
    # refused while building the request, before sending.
    path = getattr(exc, "path_to_item", None) or []
    if path and path[0] == "received_data":
        return "malformed JSON in response"
    return f"invalid request: {_clip(str(exc), 120)}"


def _range_qs(window: TimeWindow) -> str:
    return urlencode({"from_ts": int(window.baseline_start.timestamp() * 1000),
                      "to_ts": int(window.end.timestamp() * 1000), "live": "false"})


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hhmm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M UTC")


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _clip(text: str, limit: int = EXCERPT_TEXT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
