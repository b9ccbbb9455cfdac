"""Read-only at the wire, exhaustively and once for every connector: every method on every known
path, through each connector's own session, is refused in-process unless it is one of that
connector's reads.

The request matrix is generated: every HTTP method × (the allowlisted paths, made concrete, plus
the write and admin paths of each real API). What a connector may send is declared here,
independently of the connector's `Allowlist`, so a rule added there by mistake (say a POST)
fails this test instead of being excused by it. Each refusal must be `WireRefused` raised before
anything is sent, and the sandbox, which records every request it receives (even unrouted ones),
must have seen none of them. A control then sends the allowed reads through the same session and
sees each recorded, so "nothing recorded" means nothing left. The same sessions also refuse the
client library's own write helpers, the doctor's write probe and (for requests sessions) any
other host; and no rule of any connector lets a write method through on any path it matches.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.events_api import EventsApi as EventsApiV1
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.dashboard_layout_type import DashboardLayoutType
from datadog_api_client.v1.model.event_create_request import EventCreateRequest
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import WireRefused
from bot.gather.plan import incident_window
from bot.intake.catalog import Catalog
from connectors import confluence, github, pagerduty
from connectors._http import Allowlist
from connectors.confluence import ConfluenceConnector
from connectors.datadog import ALLOWED as DATADOG_RULES
from connectors.datadog import DatadogConnector
from connectors.github import GitHubConnector
from connectors.jira import JiraReader, JiraWriter
from connectors.pagerduty import PagerDutyConnector
from sandbox.scenario import Scenario
from sandbox.server import Sandbox

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
Pair = tuple[str, str]
Send = Callable[[str, str], Awaitable[object]]
Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class WireCase:
    """One connector session: the sandbox system it talks to, what it may send, what to try."""

    system: str
    allowed: frozenset[Pair]  # concrete (method, path) pairs this session may send
    other_paths: tuple[str, ...]  # write/admin/unlisted paths of the real API
    send_allowed: bool = True  # False for the Jira writer: its create is never exercised here

    def matrix(self) -> list[Pair]:
        paths = sorted({path for _, path in self.allowed} | set(self.other_paths))
        return [(method, path) for path in paths for method in METHODS if (method, path) not in self.allowed]


DATADOG = WireCase(
    system="datadog",
    allowed=frozenset({
        ("GET", "/api/v1/monitor/4101"),
        ("GET", "/api/v1/dashboard/chk-ovr-001"),
        ("GET", "/api/v1/query"),
        ("GET", "/api/v1/search"),
        ("POST", "/api/v2/logs/events/search"),  # the one read that is a POST, and only this path
        ("GET", "/api/v2/events"),
    }),
    other_paths=(
        "/api/v1/monitor", "/api/v1/monitor/4101/mute", "/api/v1/monitor/4101/unmute",
        "/api/v1/monitor/search", "/api/v1/monitor/can_delete", "/api/v1/monitor/validate",
        "/api/v1/dashboard", "/api/v1/dashboard/lists/manual", "/api/v2/dashboard/lists/manual/1/dashboards",
        "/api/v1/downtime", "/api/v2/downtime", "/api/v1/events", "/api/v1/series", "/api/v2/series",
        "/api/v2/logs/events", "/api/v2/logs/analytics/aggregate", "/api/v1/logs-queries/list",
        "/api/v1/logs/config/indexes", "/api/v2/logs/config/archives", "/api/v2/logs/events/search/extra",
        "/api/v1/synthetics/tests", "/api/v2/incidents", "/api/v1/validate", "/api/v2/users",
        "/api/v2/api_keys", "/api/v1/slo", "/api/v1/monitor/4101/extra", "/api/v2/events/abc",
    ),
)

_REPO = "/repos/acme/checkout-api"
GITHUB = WireCase(
    system="github",
    allowed=frozenset({
        ("GET", f"{_REPO}/deployments"),
        ("GET", f"{_REPO}/deployments/1/statuses"),
        ("GET", f"{_REPO}/compare/aaa111...bbb222"),
        ("GET", f"{_REPO}/commits/bbb222/pulls"),
        ("GET", f"{_REPO}/pulls/7"),
        ("GET", f"{_REPO}/pulls/7/files"),
    }),
    other_paths=(
        _REPO, f"{_REPO}/deployments/1", f"{_REPO}/deployments/1/statuses/2", f"{_REPO}/dispatches",
        f"{_REPO}/git/refs", f"{_REPO}/git/refs/heads/main", f"{_REPO}/merges", f"{_REPO}/pulls",
        f"{_REPO}/pulls/7/merge", f"{_REPO}/pulls/7/reviews", f"{_REPO}/issues", f"{_REPO}/issues/7/comments",
        f"{_REPO}/contents/README.md", f"{_REPO}/actions/secrets", f"{_REPO}/actions/workflows/ci.yml/dispatches",
        f"{_REPO}/hooks", f"{_REPO}/collaborators/mallory", f"{_REPO}/releases", f"{_REPO}/environments/prod",
        "/user", "/user/repos", "/orgs/acme/repos", "/rate_limit", "/graphql",
    ),
)

PAGERDUTY = WireCase(
    system="pagerduty",
    allowed=frozenset({
        ("GET", "/incidents"),
        ("GET", "/incidents/Q1CHK5XX"),
        ("GET", "/incidents/Q1CHK5XX/alerts"),
        ("GET", "/services"),  # doctor's list, to compare with the catalog
    }),
    other_paths=(
        "/incidents/Q1CHK5XX/notes", "/incidents/Q1CHK5XX/merge", "/incidents/Q1CHK5XX/snooze",
        "/incidents/Q1CHK5XX/responder_requests", "/incidents/Q1CHK5XX/status_updates",
        "/incidents/Q1CHK5XX/alerts/A1", "/incidents/Q1CHK5XX/log_entries", "/services/PSVCCHK",
        "/services/PSVCCHK/integrations", "/services/PSVCCHK/rules", "/maintenance_windows",
        "/schedules/S1/overrides", "/users", "/users/me", "/abilities", "/escalation_policies",
        "/webhook_subscriptions",
    ),
)

CONFLUENCE = WireCase(
    system="confluence",
    allowed=frozenset({
        ("GET", "/wiki/rest/api/search"),
        ("GET", "/wiki/rest/api/content/98001"),
    }),
    other_paths=(
        "/wiki/rest/api/content", "/wiki/rest/api/content/98001/child/attachment",
        "/wiki/rest/api/content/98001/label", "/wiki/rest/api/content/98001/restriction",
        "/wiki/rest/api/content/98001/property", "/wiki/rest/api/content/search",
        "/wiki/rest/api/content/blueprint/instance/98001", "/wiki/rest/api/space", "/wiki/rest/api/space/OPS",
        "/wiki/api/v2/pages", "/wiki/api/v2/pages/98001", "/wiki/rest/api/user/current",
        "/wiki/rest/api/content/98001/child/comment", "/wiki/rest/api/content/98001/child/page",
        "/wiki/rest/api/content/98001/label/runbook", "/wiki/rest/api/content/98001/history",
        "/rest/api/search", "/rest/api/content",  # outside the configured /wiki context path
        # Dot segments and encoded slashes, which a server might resolve to somewhere else.
        "/wiki/rest/api/content/98001/../../../admin", "/wiki/rest/api/content/..%2f..%2fadmin",
    ),
)

_JIRA_PATHS = (
    "/rest/api/2/issue", "/rest/api/2/issue/CHK-1", "/rest/api/2/issue/CHK-1/comment",
    "/rest/api/2/issue/CHK-1/transitions", "/rest/api/2/issue/CHK-1/assignee", "/rest/api/2/issue/CHK-1/worklog",
    "/rest/api/2/issue/bulk", "/rest/api/2/issueLink", "/rest/api/2/myself", "/rest/api/2/serverInfo",
    "/rest/api/2/project", "/rest/api/2/project/CHK", "/rest/api/3/issue", "/rest/api/3/search",
    "/rest/api/2/search", "/rest/api/3/search/jql",
    "/rest/api/2/search/../issue/CHK-1", "/rest/api/2/search%2f..%2fmyself",  # dot segments, encoded slashes
)
JIRA_READER = WireCase(system="jira", allowed=frozenset({("GET", "/rest/api/2/search")}), other_paths=_JIRA_PATHS)
# On Jira Cloud the reader's one search is the enhanced JQL endpoint, and the retired one is refused.
JIRA_CLOUD_READER = WireCase(system="jira", allowed=frozenset({("GET", "/rest/api/3/search/jql")}),
                             other_paths=_JIRA_PATHS)
# The writer's session: only the create, which this test never sends (it is reached only behind an
# approval); every other write, and every read, must be refused.
JIRA_WRITER = WireCase(system="jira", allowed=frozenset({("POST", "/rest/api/2/issue")}), other_paths=_JIRA_PATHS,
                       send_allowed=False)

CASES = {"datadog": DATADOG, "github": GITHUB, "pagerduty": PAGERDUTY, "confluence": CONFLUENCE,
         "jira reader": JIRA_READER, "jira cloud reader": JIRA_CLOUD_READER, "jira writer": JIRA_WRITER}


@dataclass
class Wire:
    allowlist: Allowlist
    send: Send  # one raw request through the connector's own session (transport, adapter, rest layer)
    probe: Callable[[], Awaitable[str]]  # the doctor's write probe: the refusal it returns
    # The client library's own calls that must meet the same guard (the generated Datadog API, the
    # atlassian helpers); the httpx connectors have none beyond the session itself. Each returns an
    # awaitable (the Datadog client's methods are typed as sync but return coroutines in async mode).
    helpers: dict[str, Callable[[], Any]] = field(default_factory=dict)
    # An allowed read sent to another host with the connector's credentials (requests sessions).
    elsewhere: Call | None = None


def _datadog_helpers(client: Any) -> dict[str, Callable[[], Any]]:
    monitors, dashboards = MonitorsApi(client), DashboardsApi(client)
    return {
        "delete monitor": partial(monitors.delete_monitor, 4101),
        "update monitor": partial(monitors.update_monitor, 4101, body=MonitorUpdateRequest(name="x")),
        "list monitors": monitors.list_monitors,
        "can delete monitor": partial(monitors.check_can_delete_monitor, monitor_ids=[4101]),
        "search monitors": monitors.search_monitors,
        "delete dashboard": partial(dashboards.delete_dashboard, "chk-ovr-001"),
        "create dashboard": partial(dashboards.create_dashboard, body=Dashboard(
            title="x", layout_type=DashboardLayoutType.ORDERED, widgets=[])),
        "create event": partial(EventsApiV1(client).create_event, body=EventCreateRequest(title="x", text="y")),
    }


def _atlassian_helpers(client: Any, **specific: Callable[[], object]) -> dict[str, Call]:
    """The library's generic helpers on each kind of write and an unlisted read, plus `specific`
    ones; each runs in a worker thread, as the connectors run the library."""
    blocking: dict[str, Callable[[], object]] = {
        "POST content": partial(client.post, "rest/api/content", data={"type": "page"}),
        "PUT content": partial(client.put, "rest/api/content/98001", data={}),
        "DELETE content": partial(client.delete, "rest/api/content/98001"),
        "POST issue": partial(client.post, "rest/api/2/issue", data={"fields": {}}),
        "PUT issue": partial(client.put, "rest/api/2/issue/CHK-1", data={}),
        "DELETE issue": partial(client.delete, "rest/api/2/issue/CHK-1"),
        "POST transition": partial(client.post, "rest/api/2/issue/CHK-1/transitions", data={}),
        "POST comment": partial(client.post, "rest/api/2/issue/CHK-1/comment", data={"body": "x"}),
        "GET outside": partial(client.get, "rest/api/2/myself"),
        **specific,
    }
    return {name: partial(asyncio.to_thread, call) for name, call in blocking.items()}


@asynccontextmanager
async def open_wire(name: str, sb: Sandbox) -> AsyncIterator[Wire]:
    settings = sb.settings()
    base = sb.url(CASES[name].system)
    if name == "datadog":
        dd = DatadogConnector(settings.datadog)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}

        async def send_dd(method: str, path: str) -> object:
            # The rest layer is the seam every generated API call passes through.
            return await dd._api().rest_client.request(method, base + path, query_params=[],
                                                       headers=dict(headers), body=None)

        try:
            yield Wire(dd.allowlist, send_dd, dd.write_probe, _datadog_helpers(dd._api()))
        finally:
            await dd.aclose()
    elif name in {"github", "pagerduty"}:
        http = (GitHubConnector(settings.github) if name == "github"
                else PagerDutyConnector(settings.pagerduty))

        async def send_http(method: str, path: str) -> object:
            return await http._client.request(method, path)

        try:
            yield Wire(http._allowlist, send_http, http.write_probe)
        finally:
            await http.aclose()
    else:
        atlassian = (ConfluenceConnector(settings.confluence) if name == "confluence"
                     else JiraReader(settings.jira) if name == "jira reader"
                     else JiraReader(settings.jira, cloud=True) if name == "jira cloud reader"
                     else JiraWriter(settings.jira))
        client: Any = atlassian.client  # a Confluence or a Jira: the helpers below are per kind
        session = client.session

        async def send_requests(method: str, path: str) -> object:
            return await asyncio.to_thread(session.request, method, base + path, timeout=5)

        if name == "confluence":
            specific: dict[str, Callable[[], object]] = {
                "create page": partial(client.create_page, "OPS", "x", "<p>x</p>")}
        elif name == "jira writer":
            specific = {"jql": partial(client.jql, "project = CHK")}
        else:
            specific = {"add comment": partial(client.issue_add_comment, "CHK-1", "hello")}
        helpers = _atlassian_helpers(client, **specific)
        if name == "jira writer":
            del helpers["POST issue"]  # the writer's one allowed write: only reached behind an approval
        # What this session may send, but to another host: only the host can make it refused.
        method, path = sorted(CASES[name].allowed)[0]
        elsewhere = partial(asyncio.to_thread, session.request, method, "http://127.0.0.2:9" + path, timeout=5)
        try:
            yield Wire(atlassian.allowlist, send_requests, atlassian.write_probe, helpers, elsewhere)
        finally:
            await atlassian.aclose()


async def _send_anyway(wire: Wire, method: str, path: str) -> None:
    """Send an allowed read; whatever the server answers, it was sent (which is all we check)."""
    try:
        await wire.send(method, path)
    except WireRefused:
        raise
    except Exception:  # an HTTP error status or an unexpected body: the request did leave
        pass


@pytest.mark.parametrize("name", list(CASES))
async def test_every_request_outside_the_allowlist_is_refused_before_it_leaves(
        name: str, checkout: Scenario) -> None:
    case = CASES[name]
    matrix = case.matrix()
    assert len(matrix) >= len(METHODS) * 3, "the generated matrix is not exhaustive"
    with Sandbox(checkout, systems=[case.system]) as sb:
        async with open_wire(name, sb) as wire:
            leaked: list[Pair] = []
            misnamed: list[Pair] = []
            for method, path in matrix:
                try:
                    await wire.send(method, path)
                except WireRefused as refused:
                    if refused.method != method:
                        misnamed.append((method, path))
                    continue
                except Exception:  # an error answer from the server: the request did leave
                    pass
                leaked.append((method, path))
            recorded = [(r.method, r.path) for r in sb.ctx.recorder.requests(case.system)]
            assert leaked == [], f"{name}: sent without a refusal"
            assert misnamed == [], f"{name}: refusals that name another method"
            assert recorded == [], f"{name}: the sandbox received requests the allowlist should have refused"

            # Control: the same session does reach the sandbox for what it may send.
            controls = sorted(case.allowed) if case.send_allowed else []
            for method, path in controls:
                await _send_anyway(wire, method, path)
            recorded = [(r.method, r.path) for r in sb.ctx.recorder.requests(case.system)]
    assert recorded == controls


@pytest.mark.parametrize("name", list(CASES))
async def test_the_declared_reads_cover_every_allowlist_rule(name: str, checkout: Scenario) -> None:
    """Each rule of the connector's allowlist is exercised by one of the declared pairs, and each
    declared pair is allowed: a rule added to a connector must be declared (and so reviewed) here."""
    case = CASES[name]
    with Sandbox(checkout, systems=[case.system]) as sb:
        async with open_wire(name, sb) as wire:
            allowlist = wire.allowlist
            for method, pattern in allowlist.patterns:
                single = Allowlist(allowlist.source, [(method, pattern)], base_path=allowlist.base_path)
                assert any(single.allows(m, p) for m, p in case.allowed), f"{name}: {method} {pattern} undeclared"
            assert all(allowlist.allows(m, p) for m, p in case.allowed)


def test_datadog_allows_one_post_and_it_is_the_logs_search() -> None:
    assert [rule for rule in DATADOG_RULES if rule[0] != "GET"] == [("POST", "/api/v2/logs/events/search")]


async def test_the_logs_search_post_reaches_the_sandbox_and_counts_as_a_read(checkout: Scenario) -> None:
    alert = checkout.alert.to_alert()
    service = Catalog(checkout.service_entries()).resolve(alert.service)
    assert service.datadog is not None
    window = incident_window(alert, checkout.now)
    with Sandbox(checkout, systems=["datadog"]) as sb:
        async with DatadogConnector(sb.settings().datadog) as dd:
            patterns = await dd.search_logs(service.datadog.service or service.name, service.datadog.env or "prod",
                                            window)
        searches = sb.ctx.recorder.requests("datadog", method="POST")
        writes = sb.ctx.recorder.writes("datadog")
    assert patterns, "the scenario's error logs are found"
    assert {r.path for r in searches} == {"/api/v2/logs/events/search"}
    assert writes == []


PROBES = {
    "datadog": "refused POST /api/v1/monitor: not in the read-only allowlist",
    "github": "github: refused POST /repos/incident-brief/write-probe/deployments: not in the read-only allowlist",
    "pagerduty": "pagerduty: refused POST /incidents: not in the read-only allowlist",
    "confluence": "confluence: refused POST /wiki/rest/api/content: not in the read-only allowlist",
    "jira reader": "jira: refused POST /rest/api/2/issue: not in the read-only allowlist",
    "jira cloud reader": "jira: refused POST /rest/api/2/issue: not in the read-only allowlist",
    # The writer may create: its probe tries a delete instead.
    "jira writer": "jira: refused DELETE /rest/api/2/issue/PROBE-0: not in the read-only allowlist",
}


@pytest.mark.parametrize("name", list(CASES))
async def test_the_doctors_write_probe_is_refused_before_it_leaves(name: str, checkout: Scenario) -> None:
    case = CASES[name]
    with Sandbox(checkout, systems=[case.system]) as sb:
        async with open_wire(name, sb) as wire:
            refusal = await wire.probe()
        recorded = sb.recorder.requests(case.system)
    assert refusal == PROBES[name]
    assert recorded == []


@pytest.mark.parametrize("name", ["datadog", "confluence", "jira reader", "jira cloud reader", "jira writer"])
async def test_the_client_librarys_own_calls_meet_the_same_guard(name: str, checkout: Scenario) -> None:
    case = CASES[name]
    with Sandbox(checkout, systems=[case.system]) as sb:
        async with open_wire(name, sb) as wire:
            assert wire.helpers, f"{name}: no library calls to try"
            leaked: list[str] = []
            for helper, call in wire.helpers.items():
                try:
                    await call()
                except WireRefused:
                    continue
                except Exception:  # an error answer from the server: the request did leave
                    pass
                leaked.append(helper)
        recorded = sb.recorder.requests(case.system)
    assert leaked == [], f"{name}: library calls sent without a refusal"
    assert recorded == []


@pytest.mark.parametrize("name", ["confluence", "jira reader", "jira cloud reader", "jira writer"])
async def test_a_requests_session_refuses_any_other_host(name: str, checkout: Scenario) -> None:
    """The requests guard checks the host too: the session carries the connector's credentials."""
    with Sandbox(checkout, systems=[CASES[name].system]) as sb:
        async with open_wire(name, sb) as wire:
            assert wire.elsewhere is not None
            with pytest.raises(WireRefused):
                await wire.elsewhere()


RULE_TABLES: dict[str, tuple[Pair, ...]] = {
    "datadog": DATADOG_RULES, "github": github.RULES, "pagerduty": pagerduty.RULES, "confluence": confluence.RULES,
    "jira reader": JiraReader.RULES, "jira cloud reader": JiraReader.CLOUD_RULES, "jira writer": JiraWriter.RULES,
}
# Every write any connector may send: Datadog's logs search (a read that is a POST) and the ticket.
DECLARED_WRITES: dict[str, set[Pair]] = {
    "datadog": {("POST", "/api/v2/logs/events/search")},
    "jira writer": {("POST", "/rest/api/2/issue")},
}
_segment = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)


@pytest.mark.parametrize("name", list(RULE_TABLES))
@given(data=st.data())
def test_no_write_method_is_allowed_on_any_path_a_rule_matches(name: str, data: st.DataObject) -> None:
    rules = RULE_TABLES[name]
    allowlist = Allowlist(name, rules)
    method, pattern = data.draw(st.sampled_from(rules))
    path = re.sub(r"\{[^}]+\}", lambda _placeholder: data.draw(_segment), pattern)
    assert allowlist.allows(method, path)
    for write in WRITE_METHODS:
        if allowlist.allows(write, path):
            assert (write, path) in DECLARED_WRITES.get(name, set()), f"{name}: {write} {path}"
