"""Read-only at the wire, exhaustively: every method on every known path, through each connector's
own session, is refused in-process unless it is one of that connector's reads.

The request matrix is generated: every HTTP method × (the allowlisted paths, made concrete, plus
the write and admin paths of each real API). What a connector may send is declared here,
independently of the connector's `Allowlist`, so a rule added there by mistake (say a POST)
fails this test instead of being excused by it. Each refusal must be `WireRefused` raised before
anything is sent, and the sandbox, which records every request it receives (even unrouted ones),
must have seen none of them. A control then sends the allowed reads through the same session and
sees each recorded, so "nothing recorded" means nothing left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from bot.core.errors import WireRefused
from bot.gather.plan import incident_window
from bot.intake.catalog import Catalog
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
Pair = tuple[str, str]
Send = Callable[[str, str], Awaitable[object]]


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
        "/api/v2/api_keys", "/api/v1/slo",
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
    }),
    other_paths=(
        _REPO, f"{_REPO}/deployments/1", f"{_REPO}/deployments/1/statuses/2", f"{_REPO}/dispatches",
        f"{_REPO}/git/refs", f"{_REPO}/git/refs/heads/main", f"{_REPO}/merges", f"{_REPO}/pulls",
        f"{_REPO}/pulls/7/merge", f"{_REPO}/pulls/7/reviews", f"{_REPO}/issues", f"{_REPO}/issues/7/comments",
        f"{_REPO}/contents/README.md", f"{_REPO}/actions/secrets", f"{_REPO}/actions/workflows/ci.yml/dispatches",
        f"{_REPO}/hooks", f"{_REPO}/collaborators/mallory", f"{_REPO}/releases", f"{_REPO}/environments/prod",
        "/user/repos", "/orgs/acme/repos", "/rate_limit", "/graphql",
    ),
)

PAGERDUTY = WireCase(
    system="pagerduty",
    allowed=frozenset({
        ("GET", "/incidents"),
        ("GET", "/incidents/Q1CHK5XX"),
        ("GET", "/incidents/Q1CHK5XX/alerts"),
    }),
    other_paths=(
        "/incidents/Q1CHK5XX/notes", "/incidents/Q1CHK5XX/merge", "/incidents/Q1CHK5XX/snooze",
        "/incidents/Q1CHK5XX/responder_requests", "/incidents/Q1CHK5XX/status_updates",
        "/incidents/Q1CHK5XX/alerts/A1", "/incidents/Q1CHK5XX/log_entries", "/services", "/services/PSVCCHK",
        "/maintenance_windows", "/schedules/S1/overrides", "/users/me", "/abilities", "/escalation_policies",
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
        "/rest/api/search", "/rest/api/content",  # outside the configured /wiki context path
    ),
)

_JIRA_PATHS = (
    "/rest/api/2/issue", "/rest/api/2/issue/CHK-1", "/rest/api/2/issue/CHK-1/comment",
    "/rest/api/2/issue/CHK-1/transitions", "/rest/api/2/issue/CHK-1/assignee", "/rest/api/2/issue/CHK-1/worklog",
    "/rest/api/2/issue/bulk", "/rest/api/2/issueLink", "/rest/api/2/myself", "/rest/api/2/serverInfo",
    "/rest/api/2/project", "/rest/api/2/project/CHK", "/rest/api/3/issue", "/rest/api/3/search",
    "/rest/api/2/search", "/rest/api/3/search/jql",
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
            yield Wire(dd.allowlist, send_dd)
        finally:
            await dd.aclose()
    elif name in {"github", "pagerduty"}:
        http = (GitHubConnector(settings.github) if name == "github"
                else PagerDutyConnector(settings.pagerduty))

        async def send_http(method: str, path: str) -> object:
            return await http._client.request(method, path)

        try:
            yield Wire(http._allowlist, send_http)
        finally:
            await http.aclose()
    else:
        atlassian = (ConfluenceConnector(settings.confluence) if name == "confluence"
                     else JiraReader(settings.jira) if name == "jira reader"
                     else JiraReader(settings.jira, cloud=True) if name == "jira cloud reader"
                     else JiraWriter(settings.jira))

        async def send_requests(method: str, path: str) -> object:
            return await asyncio.to_thread(atlassian.client.session.request, method, base + path, timeout=5)

        try:
            yield Wire(atlassian.allowlist, send_requests)
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
