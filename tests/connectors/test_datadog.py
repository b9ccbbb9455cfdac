"""Datadog, both sides of the wire: the sandbox renders the world, the real client reads it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.analyse.metrics import metric_signals
from bot.core.config import DatadogSettings
from bot.core.errors import SourceUnavailable
from bot.core.models import EvidenceKind, Source, TimeWindow, evidence_id
from bot.gather.plan import incident_window
from connectors.datadog import DatadogConnector
from sandbox.scenario import Scenario, bundled_scenarios_dir, load_scenario, parse_scenario
from sandbox.server import Sandbox

CHECKOUT = bundled_scenarios_dir() / "checkout-5xx-after-deploy.yaml"
SEARCH = bundled_scenarios_dir() / "search-latency-injection.yaml"
ERR_RATE = "sum:trace.http.request.errors{service:checkout-api,env:prod}.as_rate()"
P95 = "p95:trace.http.request.duration{service:checkout-api,env:prod}"
KEYS = {"DD-API-KEY": "sandbox-api-token", "DD-APPLICATION-KEY": "sandbox-app-key"}


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def window_for(alert_at: str, end: str) -> TimeWindow:
    at = _t(alert_at)
    return TimeWindow(alert_at=at, start=at - timedelta(minutes=30), end=_t(end),
                      baseline_start=at - timedelta(hours=2))


CHECKOUT_WINDOW = window_for("2026-05-12T14:01:00Z", "2026-05-12T14:05:00Z")
SEARCH_WINDOW = window_for("2026-06-03T08:12:00Z", "2026-06-03T08:20:00Z")


def settings_for(sandbox: Sandbox, **overrides: Any) -> DatadogSettings:
    base = {"base_url": sandbox.url("datadog"), "web_url": "https://app.datadoghq.example",
            "token": "sandbox-api-token", "app_key": "sandbox-app-key", "timeout_s": 5.0}
    return DatadogSettings(**{**base, **overrides})


@asynccontextmanager
async def connector(sandbox: Sandbox, **overrides: Any) -> AsyncIterator[DatadogConnector]:
    page_limit = overrides.pop("log_page_limit", 1000)
    conn = DatadogConnector(settings_for(sandbox, **overrides), log_page_limit=page_limit)
    try:
        yield conn
    finally:
        await conn.aclose()


def small_scenario(faults: dict[str, Any] | None = None) -> Scenario:
    """A tiny Datadog-only world, for faults and edge cases."""
    world: dict[str, Any] = {
        "monitors": [{"id": 7, "name": "api errors", "query": "avg(last_5m):x{*} > 1"}],
        "metrics": [{"id": "m", "query": "avg:x{*}",
                     "segments": [{"from": "2026-01-01T10:00:00Z", "value": 1}]}],
        "logs": [{"id": "l", "service": "api", "status": "error", "message": "boom 1", "count": 3,
                  "from": "2026-01-01T11:50:00Z", "to": "2026-01-01T11:59:00Z"}],
    }
    if faults:
        world["faults"] = faults
    return parse_scenario({
        "version": 1, "id": "dd-small", "title": "small", "now": "2026-01-01T12:00:00Z",
        "alert": {"via": "cli", "title": "api errors", "service": "api",
                  "triggered_at": "2026-01-01T11:55:00Z"},
        "world": world, "expect": {"cause": {"kind": "unknown"}},
    })


SMALL_WINDOW = window_for("2026-01-01T11:55:00Z", "2026-01-01T12:00:00Z")


@pytest.fixture(scope="module")
def checkout() -> Iterator[Sandbox]:
    with Sandbox(load_scenario(CHECKOUT), systems=["datadog"]) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(checkout: Sandbox) -> Sandbox:
    checkout.recorder.clear()
    return checkout


# --- the connector against the bundled incident ------------------------------------------


@pytest.mark.asyncio
async def test_monitor_evidence(sandbox: Sandbox) -> None:
    async with connector(sandbox) as dd:
        [ev] = await dd.get_monitor(4101)
    assert ev.id == evidence_id("monitor", "4101")
    assert ev.kind == EvidenceKind.MONITOR
    assert ev.source == Source.DATADOG
    assert ev.data["status"] == "Alert"
    assert "trace.http.request.errors" in ev.data["query"]
    assert ev.ref == {"monitor_id": "4101"}
    assert ev.timestamp == _t("2026-05-12T14:01:00Z")
    assert ev.link == "https://app.datadoghq.example/monitors/4101"
    assert ev.provenance.tool == "datadog.get_monitor"
    [req] = sandbox.recorder.requests("datadog", tool="datadog.get_monitor")
    assert req.provenance == ("4101",)
    assert req.status == 200


@pytest.mark.asyncio
async def test_unknown_monitor_is_a_readable_gap(sandbox: Sandbox) -> None:
    async with connector(sandbox) as dd:
        with pytest.raises(SourceUnavailable) as err:
            await dd.get_monitor(999)
    assert err.value.reason == "HTTP 404: not found"
    assert err.value.tool == "datadog.get_monitor"


@pytest.mark.asyncio
async def test_dashboards_bring_their_metrics_once(sandbox: Sandbox) -> None:
    async with connector(sandbox) as dd:
        evidence = await dd.get_dashboards(["chk-ovr-001", "chk-ovr-001"], CHECKOUT_WINDOW)
    kinds = [e.kind for e in evidence]
    assert kinds == [EvidenceKind.DASHBOARD, EvidenceKind.METRIC, EvidenceKind.METRIC]
    dash = evidence[0]
    assert dash.data["widgets"] == [{"title": "5xx rate", "query": ERR_RATE, "widget_type": "timeseries"},
                                    {"title": "p95 latency", "query": P95, "widget_type": "timeseries"}]
    assert dash.excerpt == "2 widgets graph metrics (2 timeseries), 2 metric queries: 5xx rate, p95 latency."
    assert dash.link is not None
    assert dash.link.startswith("https://app.datadoghq.example/dashboard/chk-ovr-001?from_ts=")
    assert [e.ref["query"] for e in evidence[1:]] == [ERR_RATE, P95]
    assert len(sandbox.recorder.requests("datadog", tool="datadog.get_dashboard")) == 1
    assert len(sandbox.recorder.requests("datadog", tool="datadog.query_metrics")) == 2


@pytest.mark.asyncio
async def test_metric_excerpt_states_the_level_change(sandbox: Sandbox) -> None:
    async with connector(sandbox) as dd:
        asked = [ERR_RATE, " " + ERR_RATE + " ", "avg:not.in.world{*}"]
        evidence = await dd.query_metrics(asked, CHECKOUT_WINDOW)
    [ev] = evidence  # duplicates collapse; an unknown query has no series and no evidence
    points = ev.data["points"]
    assert points[0][0] >= int(CHECKOUT_WINDOW.baseline_start.timestamp())
    assert points[-1][0] <= int(CHECKOUT_WINDOW.end.timestamp())
    assert 0.2 < ev.data["before"] < 0.4
    assert 8 < ev.data["after"] < 11
    assert ev.excerpt.startswith("Rose from about 0.3")
    assert ev.timestamp is not None
    assert abs((ev.timestamp - _t("2026-05-12T13:58:00Z")).total_seconds()) <= 60
    recorded = sandbox.recorder.requests("datadog", tool="datadog.query_metrics")
    assert [r.provenance for r in recorded] == [("err-rate",), ()]
    assert recorded[0].query["from"] == [str(int(CHECKOUT_WINDOW.baseline_start.timestamp()))]


@pytest.mark.asyncio
async def test_the_excerpts_change_time_is_the_analysis_onset(sandbox: Sandbox) -> None:
    scen = load_scenario(CHECKOUT)
    window = incident_window(scen.alert.to_alert(), scen.now)
    async with connector(sandbox) as dd:
        evidence = await dd.query_metrics([ERR_RATE, P95], window)
    [change], _saturated = metric_signals(evidence, window)
    stepped = next(e for e in evidence if e.id == change.evidence_id)
    assert stepped.ref["query"] == ERR_RATE
    assert stepped.timestamp == change.onset
    assert stepped.data["changed_at"] == change.onset.isoformat()
    assert f"the change began around {change.onset:%H:%M} UTC" in stepped.excerpt
    flat = next(e for e in evidence if e.ref["query"] == P95)
    assert flat.timestamp is None, "no step, no time: the analysis found none either"
    assert flat.excerpt.startswith("Steady at about")


@pytest.mark.asyncio
async def test_log_patterns_for_the_checkout_incident(sandbox: Sandbox) -> None:
    async with connector(sandbox) as dd:
        evidence = await dd.search_logs("checkout-api", "prod", CHECKOUT_WINDOW)
    npe = evidence[0]
    assert npe.kind == EvidenceKind.LOG_PATTERN
    assert npe.data["count"] == 340
    assert npe.data["count_before"] == 0
    assert npe.data["status"] == "error"
    assert "PriceCalculator" in npe.ref["sample"]
    assert "PriceCalculator" in npe.data["template"]
    assert npe.data["first_seen"].startswith("2026-05-12T13:58:10")
    assert "new since the baseline" in npe.excerpt
    assert npe.data["truncated"] is False
    assert npe.link is not None
    assert "/logs?query=service%3Acheckout-api" in npe.link
    pool = next(e for e in evidence if "HikariPool" in e.ref["sample"])
    # 4 events 09:00-14:00: 12:20 falls in the baseline (from 12:01), 14:00 in the window.
    assert (pool.data["count"], pool.data["count_before"], pool.data["status"]) == (1, 1, "warn")
    [req] = sandbox.recorder.requests("datadog", tool="datadog.search_logs")
    body = req.json()
    assert body["filter"]["query"] == ("service:checkout-api env:prod status:(alert OR critical OR emerg OR emergency "
                                       "OR error OR fatal OR warn OR warning)")
    assert body["page"]["limit"] == 1000
    assert set(req.provenance) == {"npe", "pool-warn"}


@pytest.mark.asyncio
async def test_events_carry_ids_tags_and_source(sandbox: Sandbox) -> None:
    wide = CHECKOUT_WINDOW.model_copy(update={"baseline_start": _t("2026-05-12T09:00:00Z")})
    async with connector(sandbox) as dd:
        [flag] = await dd.list_events("checkout-api", wide)
        none = await dd.list_events("checkout-api", CHECKOUT_WINDOW)  # the flag is older
    assert none == []
    assert flag.ref["title"].startswith("Feature flag new-checkout-ui")
    assert flag.data["source"] == "launchdarkly"
    assert "service:checkout-api" in flag.data["tags"]
    assert flag.timestamp == _t("2026-05-12T11:00:00Z")
    assert flag.link is not None
    assert flag.link.startswith("https://app.datadoghq.example/event/explorer?query=")
    first = sandbox.recorder.requests("datadog", tool="datadog.list_events")[0]
    assert first.query["filter[query]"] == ["service:checkout-api"]
    assert first.provenance == ("flag",)


async def test_vendor_status_page_events_arrive_without_a_service_tag() -> None:
    scen = load_scenario(bundled_scenarios_dir() / "payments-copy-deploy-stripe-degraded.yaml")
    with Sandbox(scen, systems=["datadog"]) as sb:
        async with connector(sb) as dd:
            events = await dd.list_events("payments-api", window_for("2026-09-03T15:08:00Z", "2026-09-03T15:15:00Z"))
        queries = [r.query["filter[query]"] for r in sb.recorder.requests("datadog", tool="datadog.list_events")]
    assert queries == [["service:payments-api"], ["source:statuspage"]]
    [status] = events
    assert status.ref["title"] == "Stripe: Degraded performance - API requests"
    assert status.data["source"] == "statuspage"
    assert "statuspage_page:stripe" in status.data["tags"]


# --- pagination ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_logs_follow_the_cursor_across_pages() -> None:
    with Sandbox(load_scenario(SEARCH), systems=["datadog"]) as sb:
        async with connector(sb) as dd:
            evidence = await dd.search_logs("search-api", "prod", SEARCH_WINDOW)
        pages = sb.recorder.requests("datadog", tool="datadog.search_logs")
        assert len(pages) == 2  # 1,204 events at 1,000 a page
        assert "cursor" not in pages[0].json()["page"]
        assert pages[1].json()["page"]["cursor"]
        es = next(e for e in evidence if "Elasticsearch" in e.ref["sample"])
        assert es.data["count"] == 1200
        assert es.data["truncated"] is False
        assert sum(e.data["count"] + e.data["count_before"] for e in evidence) == 1204

        sb.recorder.clear()
        async with connector(sb, max_pages=3, log_page_limit=100) as dd:
            partial = await dd.search_logs("search-api", "prod", SEARCH_WINDOW)
        assert len(sb.recorder.requests("datadog", tool="datadog.search_logs")) == 3
        assert sum(e.data["count"] + e.data["count_before"] for e in partial) == 300
        assert all(e.data["truncated"] for e in partial)
        assert partial[0].excerpt.startswith("[partial: only the newest 300 events were read]")


# --- faults (every fault on every connector: test_faults.py) ------------------------------


@pytest.mark.asyncio
async def test_one_tools_fault_leaves_the_others_alone() -> None:
    faults = {"errors": {"datadog.query_metrics": "http_500"}}
    with Sandbox(small_scenario(faults), systems=["datadog"]) as sb:
        async with connector(sb, max_retries=2) as dd:
            with pytest.raises(SourceUnavailable) as err:
                await dd.query_metrics(["avg:x{*}"], SMALL_WINDOW)
            [monitor] = await dd.get_monitor(7)  # one tool's fault leaves the others alone
        assert err.value.reason == "HTTP 500 after 3 attempts"
        assert err.value.tool == "datadog.query_metrics"
        assert len(sb.recorder.requests("datadog", tool="datadog.query_metrics")) == 3
        assert monitor.data["monitor_id"] == 7


@pytest.mark.asyncio
async def test_timeouts_are_bounded_by_settings_and_leave_the_client_usable() -> None:
    with Sandbox(small_scenario({"errors": {"datadog.search_logs": "timeout"}}), systems=["datadog"]) as sb:
        started = time.monotonic()
        async with connector(sb, timeout_s=0.3, max_retries=1) as dd:
            with pytest.raises(SourceUnavailable) as err:
                await dd.search_logs("api", "prod", SMALL_WINDOW)
            [monitor] = await dd.get_monitor(7)  # the abandoned requests leave the client usable
        assert err.value.reason == "timed out after 2 attempts"
        assert monitor.ref == {"monitor_id": "7"}
        assert time.monotonic() - started < 5


@pytest.mark.asyncio
async def test_missing_api_key_meets_datadogs_403(sandbox: Sandbox) -> None:
    async with connector(sandbox, token="") as dd:
        with pytest.raises(SourceUnavailable) as err:
            await dd.get_monitor(4101)
        assert await dd.write_probe() == "refused POST /api/v1/monitor: not in the read-only allowlist"
    assert err.value.reason == ("HTTP 403: check the Datadog API and application keys "
                                "(no API key is configured)")
    [req] = sandbox.recorder.requests("datadog")
    assert req.status == 403
    assert "dd-api-key" not in req.headers


# --- the sandbox's wire format, read directly ---------------------------------------------


def test_sandbox_speaks_datadog_json(sandbox: Sandbox) -> None:
    base = sandbox.url("datadog")
    assert httpx.get(f"{base}/api/v1/monitor/4101").json() == {"errors": ["Forbidden"]}
    spaced = ERR_RATE.replace(",", ", ")
    metrics = httpx.get(f"{base}/api/v1/query", headers=KEYS,
                        params={"from": 1778594000, "to": 1778594400, "query": spaced}).json()
    assert metrics["status"] == "ok"
    assert metrics["series"][0]["expression"] == spaced
    assert all(len(p) == 2 and p[0] % 1000 == 0 for p in metrics["series"][0]["pointlist"])
    again = httpx.get(f"{base}/api/v1/query", headers=KEYS,
                      params={"from": 1778594000, "to": 1778594400, "query": ERR_RATE}).json()
    assert again["series"][0]["pointlist"] == metrics["series"][0]["pointlist"]  # deterministic noise
    unknown = httpx.get(f"{base}/api/v1/query", headers=KEYS,
                        params={"from": 1, "to": 2, "query": "avg:nope{*}"}).json()
    assert unknown["status"] == "ok"
    assert unknown["series"] == []

    def search(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{base}/api/v2/logs/events/search", headers=KEYS, json=body)

    span = {"from": "2026-05-12T00:00:00Z", "to": "2026-05-12T14:05:00Z"}
    assert search({"filter": span, "page": {"limit": 1001}}).status_code == 400
    warn = search({"filter": {**span, "query": "service:checkout-api status:warn"},
                   "page": {"limit": 50}}).json()
    assert len(warn["data"]) == 4
    assert warn["meta"]["page"] == {}
    free = search({"filter": {**span, "query": "service:checkout-api -status:warn PriceCalculator"},
                   "page": {"limit": 5}}).json()
    assert len(free["data"]) == 5
    assert free["links"]["next"]
    assert free["meta"]["page"]["after"]
    assert free["data"][0]["attributes"]["attributes"] == {"version": "2.3.1"}
    assert search({"filter": {**span, "query": "service:other"}}).json()["data"] == []
    cursor = free["meta"]["page"]["after"]
    other = search({"filter": {**span, "query": "service:other"}, "page": {"cursor": cursor}})
    assert other.status_code == 400


def test_sandbox_pages_are_disjoint_and_complete(sandbox: Sandbox) -> None:
    base = sandbox.url("datadog")
    body: dict[str, Any] = {"filter": {"query": "service:checkout-api", "from": "2026-05-12T00:00:00Z",
                                       "to": "2026-05-12T14:05:00Z"}, "page": {"limit": 150}}
    seen: list[str] = []
    stamps: list[str] = []
    while True:
        page = httpx.post(f"{base}/api/v2/logs/events/search", headers=KEYS, json=body).json()
        seen += [item["id"] for item in page["data"]]
        stamps += [item["attributes"]["timestamp"] for item in page["data"]]
        after = page["meta"]["page"].get("after")
        if not after:
            break
        body["page"]["cursor"] = after
    assert len(seen) == len(set(seen)) == 344
    assert stamps == sorted(stamps, reverse=True)  # newest first is the default order


def test_sandbox_rejects_bad_times(sandbox: Sandbox) -> None:
    base = sandbox.url("datadog")
    bad = httpx.get(f"{base}/api/v1/query", headers=KEYS, params={"from": "yesterday", "to": 2, "query": "q"})
    assert bad.status_code == 400
    assert bad.json()["errors"]
    events = httpx.get(f"{base}/api/v2/events", headers=KEYS,
                       params={"filter[query]": "source:launchdarkly", "filter[from]": "now-1d"}).json()
    assert [e["attributes"]["attributes"]["title"] for e in events["data"]] == [
        "Feature flag new-checkout-ui enabled for 10% of users"]


async def test_dependency_metrics_finds_the_blamed_dependency_by_name_search(search_injection: Scenario) -> None:
    window = incident_window(search_injection.alert.to_alert(), search_injection.now)
    with Sandbox(search_injection, systems=["datadog"]) as sandbox:
        conn = DatadogConnector(sandbox.settings().datadog)
        try:
            found = await conn.dependency_metrics("Elasticsearch", ["elasticsearch."], window)
        finally:
            await conn.aclose()
        searched = sandbox.recorder.requests("datadog", path_prefix="/api/v1/search")
    assert [e.ref["query"] for e in found] == ["avg:elasticsearch.process.cpu.percent{*}"]
    assert found[0].data["after"] > 90  # the saturated cluster the logs blamed
    assert len(searched) == 1
