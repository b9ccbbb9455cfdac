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
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
from bot.core.log_status import ERROR_STATUSES, WARNING_STATUSES
from bot.core.models import Evidence, ReferenceCheck, TimeWindow
from connectors._http import Allowlist, base_path
from connectors._retry import Failed, RetryPolicy
from connectors.datadog_evidence import (
    clip,
    dashboard_evidence,
    event_evidence,
    iso,
    log_line,
    metric_series_evidence,
    monitor_evidence,
    pattern_evidence,
    provenance,
    range_qs,
)
from connectors.datadog_widgets import dashboard_queries
from connectors.log_patterns import LogLine, mine

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
# Vendors' status pages (Statuspage integration): dependency evidence no service tag carries.
STATUS_PAGE_QUERY = "source:statuspage"
MAX_STATUS_EVENTS = 20
# Error-class first, then warnings: what the log search asks for (bot.core.log_status).
LOG_STATUSES = (*sorted(ERROR_STATUSES), *sorted(WARNING_STATUSES))
# A dashboard can graph dozens of queries; each is one API call inside the source's time budget.
MAX_DASHBOARD_QUERIES = 12

log = logging.getLogger(__name__)


@dataclass
class _Queried:
    evidence: list[Evidence] = field(default_factory=list)
    rejected: list[SourceUnavailable] = field(default_factory=list)
    answered: int = 0


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
        prov = provenance(tool, f"GET /api/v1/monitor/{int(m.get('id', monitor_id))}?group_states=all")
        return [monitor_evidence(m, monitor_id, self.settings.link_base, prov)]

    async def get_dashboards(self, dashboard_ids: list[str], window: TimeWindow) -> list[Evidence]:
        """Tool ``datadog.get_dashboard`` per id, then the metric queries its widgets graph (at
        most `MAX_DASHBOARD_QUERIES` distinct ones per dashboard, in the dashboard's order)."""
        tool = "datadog.get_dashboard"
        api = DashboardsApi(self._api())
        out: list[Evidence] = []
        metrics: list[Evidence] = []
        for dashboard_id in dict.fromkeys(dashboard_ids):
            try:
                raw = await self._call(tool, partial(api.get_dashboard, dashboard_id))
            except SourceUnavailable as exc:  # which dashboard: the catalog may name a deleted one
                raise SourceUnavailable(SOURCE, f"dashboard {dashboard_id}: {exc.reason}", tool) from exc
            prov = provenance(tool, f"GET /api/v1/dashboard/{dashboard_id}")
            body = _plain_json(raw)
            queries = list(dict.fromkeys(w.query for w in dashboard_queries(body).metric))
            chosen = queries[:MAX_DASHBOARD_QUERIES]
            read = await self._query_each(chosen, window)
            metrics += read.evidence
            out.append(dashboard_evidence(dashboard_id, body, window, self.settings.link_base, prov,
                                          run=len(chosen) if len(chosen) < len(queries) else None,
                                          rejected=len(read.rejected)))
        return out + metrics

    async def dashboard_check(self, dashboard_id: str) -> ReferenceCheck:
        """For ``doctor`` (tool ``datadog.get_dashboard``): whether Datadog has the dashboard, and
        its title. One read of the dashboard: none of the queries its widgets graph are run."""
        tool = "datadog.get_dashboard"
        api = DashboardsApi(self._api())
        try:
            raw = await self._call(tool, partial(api.get_dashboard, dashboard_id))
        except SourceUnavailable as exc:
            # Only Datadog's 404 says the dashboard is gone; any other failure says nothing of it.
            if not isinstance(exc, WireRefused) and exc.reason.startswith("HTTP 404"):
                return ReferenceCheck(state="missing", detail=exc.reason)
            raise
        title = _plain(raw).get("title")
        return ReferenceCheck(state="found", detail=clip(str(title), 80) if title else "")

    async def query_metrics(self, queries: list[str], window: TimeWindow) -> list[Evidence]:
        """Tool ``datadog.query_metrics``: each distinct query from baseline_start to end; a
        grouped query gives one item per group. A query Datadog refuses (HTTP 400: a query the
        API cannot run) is skipped, the others still read; if every query is refused, that is
        the tool's failure."""
        read = await self._query_each(queries, window)
        if read.rejected and not read.answered:
            raise read.rejected[0]
        return read.evidence

    async def _query_each(self, queries: list[str], window: TimeWindow) -> _Queried:
        tool = "datadog.query_metrics"
        api = MetricsApi(self._api())
        start, end = int(window.baseline_start.timestamp()), int(window.end.timestamp())
        read = _Queried()
        for query in dict.fromkeys(q.strip() for q in queries if q.strip()):
            try:
                raw = await self._call(tool, partial(api.query_metrics, _from=start, to=end, query=query))
            except SourceUnavailable as exc:
                if not exc.reason.startswith(("HTTP 400", "HTTP 422")):
                    raise
                log.info("datadog: query refused (%s): %s", exc.reason, query)
                read.rejected.append(exc)
                continue
            read.answered += 1
            prov = provenance(tool, f"GET /api/v1/query?from={start}&to={end}&query={query}")
            answer = _plain(raw)
            read.evidence += metric_series_evidence(query, answer.get("series") or [], window,
                                                    self.settings.link_base, prov, answer.get("group_by") or [])
        return read

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
        """Tool ``datadog.search_logs``: every error-class and warning-class status (`LOG_STATUSES`),
        mined into templates."""
        tool = "datadog.search_logs"
        query = f"service:{service} env:{env} status:({' OR '.join(LOG_STATUSES)})"
        lines, truncated = await self._fetch_logs(tool, query, window)
        patterns = mine(lines, split_at=window.start)
        link = f"{self.settings.link_base}/logs?" + urlencode({"query": query}) + "&" + range_qs(window)
        prov = provenance(tool, "POST /api/v2/logs/events/search " + query)
        return [pattern_evidence(p, service, env, window, link, prov, truncated, len(lines)) for p in patterns]

    async def list_events(self, service: str, window: TimeWindow) -> list[Evidence]:
        """Tool ``datadog.list_events``: deploys, config changes and flags tagged with the
        service, and the vendors' status-page events (Datadog's Statuspage integration posts
        them with ``source:statuspage``, tagged with the page, never with our service), from
        baseline_start to end, newest first."""
        tool = "datadog.list_events"
        own_query = f"service:{service}"
        own = await self._events(tool, own_query, window, MAX_EVENTS)
        vendors = await self._events(tool, STATUS_PAGE_QUERY, window, MAX_STATUS_EVENTS)
        seen = {str(item.get("id")) for item in own}
        items = own + [item for item in vendors if str(item.get("id")) not in seen]
        link_base = f"{self.settings.link_base}/event/explorer?" + urlencode({"query": own_query})
        prov = provenance(tool, f"GET /api/v2/events?filter[query]={own_query} (and {STATUS_PAGE_QUERY})")
        return [event_evidence(item, link_base, window, prov) for item in items]

    async def _events(self, tool: str, query: str, window: TimeWindow, limit: int) -> list[dict[str, Any]]:
        api = EventsApi(self._api())
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
            if not cursor or len(items) >= limit:
                break
        return items[:limit]

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
                filter=LogsQueryFilter(query=query, _from=iso(window.baseline_start), to=iso(window.end),
                                       indexes=["*"]),
                page=LogsListRequestPage(**page_args),
                # Newest first: when the page bound cuts, it cuts the old baseline, not the incident.
                sort=LogsSort.TIMESTAMP_DESCENDING,
            )
            page = _plain(await self._call(tool, partial(api.list_logs, body=body)))
            lines += [log_line(item) for item in page.get("data") or []]
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


# --- small helpers --------------------------------------------------------------------


def _plain(model: Any) -> dict[str, Any]:
    """A client model as plain dicts and lists (documented field names, datetimes kept)."""
    data = model_to_dict(model, serialize=False)
    return data if isinstance(data, dict) else {}


def _plain_json(model: Any) -> dict[str, Any]:
    """A client model as the JSON Datadog sent (datetimes as strings): what a pure reader of the
    wire format, like `connectors.datadog_widgets`, expects."""
    data = _plain(model)
    return json.loads(json.dumps(data, default=str)) if data else {}


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
    return f"invalid request: {clip(str(exc), 120)}"
