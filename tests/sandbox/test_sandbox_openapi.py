"""The sandbox speaks the vendors' shapes: every answer of every sandbox endpoint the connectors
call validates against the vendor's published OpenAPI description (Datadog v1/v2, GitHub REST,
PagerDuty REST, Confluence, Jira), so the fake cannot drift from the real thing unnoticed. The
vendors' own recorded answers are validated first: they prove the trimmed schemas and the
OpenAPI-to-JSON-Schema bridge (tests/helpers/openapi.py) accept what the vendors really send."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.openapi import Mode, answer_errors
from tests.helpers.replay import FIXTURES, fixture
from tests.helpers.scenarios import scenario

DD, GH, PD, ATL = (FIXTURES / v for v in ("datadog", "github", "pagerduty", "atlassian"))
GH_REPO = "GET /repos/{owner}/{repo}"


def _all(vendor: str, spec: str, operation: str, folder: Any) -> list[tuple[str, str, str, Any]]:
    return [(vendor, spec, operation, p) for p in sorted(folder.glob("*.json"))]


RECORDED = [
    *_all("datadog", "v1", "GET /api/v1/monitor/{monitor_id}", DD / "monitors"),
    *_all("datadog", "v1", "GET /api/v1/dashboard/{dashboard_id}", DD / "dashboards"),
    *_all("datadog", "v1", "GET /api/v1/query", DD / "metrics"),
    *_all("datadog", "v2", "POST /api/v2/logs/events/search", DD / "logs"),
    *_all("datadog", "v2", "GET /api/v2/events", DD / "events"),
    ("github", "rest", f"{GH_REPO}/deployments", GH / "deployments.json"),
    ("github", "rest", f"{GH_REPO}/deployments/{{deployment_id}}", GH / "deployment.json"),
    ("github", "rest", f"{GH_REPO}/deployments/{{deployment_id}}/statuses", GH / "deployment_statuses.json"),
    ("github", "rest", f"{GH_REPO}/compare/{{basehead}}", GH / "compare_default.json"),
    ("github", "rest", f"{GH_REPO}/compare/{{basehead}}", GH / "compare_per_page_2.json"),
    ("github", "rest", f"{GH_REPO}/commits/{{commit_sha}}/pulls", GH / "commit_pulls.json"),
    *[("github", "rest", f"{GH_REPO}/pulls/{{pull_number}}", GH / f"pull_{n}.json") for n in (3370, 31, 204)],
    ("pagerduty", "rest", "GET /incidents/{id}", PD / "rest" / "get_incident.json"),
    ("pagerduty", "rest", "GET /incidents/{id}/alerts", PD / "rest" / "list_incident_alerts.json"),
    ("pagerduty", "rest", "GET /incidents", PD / "rest" / "list_incidents.json"),
    ("pagerduty", "rest", "GET /services", PD / "rest" / "list_services.json"),
    ("atlassian", "confluence", "GET /wiki/rest/api/search", ATL / "confluence_cloud_search.json"),
    ("atlassian", "confluence", "GET /wiki/rest/api/content/{id}", ATL / "confluence_cloud_page.json"),
    ("atlassian", "confluence", "GET /wiki/rest/api/content/{id}", ATL / "confluence_server_page_kelkoo.json"),
    ("atlassian", "jira", "GET /rest/api/3/search", ATL / "jira_documented_search.json"),
    ("atlassian", "jira", "GET /rest/api/3/search", ATL / "jira_cloud_search.json"),
    ("atlassian", "jira", "GET /rest/api/3/search", ATL / "jira_dc_search.json"),
    ("atlassian", "jira", "GET /rest/api/3/search", ATL / "jira_server_search_tutorial.json"),
    ("atlassian", "jira", "GET /rest/api/3/search/jql", ATL / "jira_cloud_search_jql_documented.json"),
    ("atlassian", "jira", "POST /rest/api/3/issue", ATL / "jira_created_issue_documented.json"),
]


@pytest.mark.parametrize(("vendor", "spec", "operation", "path"), RECORDED,
                         ids=lambda v: v.stem if hasattr(v, "stem") else None)
def test_the_vendors_recorded_answers_conform_to_their_published_schemas(vendor: str, spec: str, operation: str,
                                                                         path: Any) -> None:
    # Shapes and types: the vendors' answers omit fields or send null where their own published
    # schemas say otherwise (see answer_errors); the sandbox below is held to the full schema.
    assert answer_errors(vendor, spec, operation, json.loads(path.read_text()), mode="shapes") == []


def test_the_schemas_are_not_vacuous() -> None:
    # A schema that accepted anything would make every check here pass: each must refuse garbage.
    assert answer_errors("datadog", "v1", "GET /api/v1/monitor/{monitor_id}", {"id": "x", "type": 3})
    assert answer_errors("github", "rest", "GET /repos/{owner}/{repo}/deployments", [{"id": "not-int"}])
    assert answer_errors("pagerduty", "rest", "GET /incidents/{id}", {"incident": {"id": 5}})
    assert answer_errors("pagerduty", "rest", "GET /services", {"services": [{"type": "service_reference"}]})
    assert answer_errors("atlassian", "confluence", "GET /wiki/rest/api/search", {"results": "no"})
    assert answer_errors("atlassian", "jira", "GET /rest/api/3/search", {"issues": {}})
    assert answer_errors("atlassian", "jira", "GET /rest/api/3/search/jql", {"isLast": "yes"})
    assert answer_errors("atlassian", "jira", "POST /rest/api/3/issue", {"key": 7})
    assert answer_errors("datadog", "v2", "GET /api/v2/events", {"data": [{"attributes": 1}]})


def _basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def sandbox_answers(sc: Scenario, sb: Sandbox) -> Iterator[tuple[str, str, str, Any]]:
    """(vendor, spec, operation, answer) for every sandbox endpoint the connectors call, asked
    the way the connectors ask."""
    token = sb.ctx.secrets["api_token"]
    world = sc.world
    start, end = int((sc.now - timedelta(hours=3)).timestamp()), int(sc.now.timestamp())
    with httpx.Client(timeout=10) as http:
        dd = {"DD-API-KEY": token, "DD-APPLICATION-KEY": token}
        base = sb.url("datadog")
        for monitor in world.monitors:
            yield "datadog", "v1", "GET /api/v1/monitor/{monitor_id}", http.get(
                f"{base}/api/v1/monitor/{monitor.id}", params={"group_states": "all"}, headers=dd).json()
        for dashboard in world.dashboards:
            yield "datadog", "v1", "GET /api/v1/dashboard/{dashboard_id}", http.get(
                f"{base}/api/v1/dashboard/{dashboard.id}", headers=dd).json()
        for metric in world.metrics:
            yield "datadog", "v1", "GET /api/v1/query", http.get(
                f"{base}/api/v1/query", params={"from": start, "to": end, "query": metric.query}, headers=dd).json()
        yield "datadog", "v1", "GET /api/v1/search", http.get(f"{base}/api/v1/search", params={"q": "metrics:trace."},
                                                              headers=dd).json()
        logs = http.post(f"{base}/api/v2/logs/events/search", headers=dd, json={
            "filter": {"query": f"service:{sc.alert.service}", "from": "now-3h", "to": "now", "indexes": ["*"]},
            "page": {"limit": 2}, "sort": "-timestamp"}).json()
        yield "datadog", "v2", "POST /api/v2/logs/events/search", logs
        yield "datadog", "v2", "GET /api/v2/events", http.get(f"{base}/api/v2/events", headers=dd, params={
            "filter[query]": f"service:{sc.alert.service}", "filter[from]": str(start * 1000),
            "filter[to]": str(end * 1000), "page[limit]": 2}).json()

        gh = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
        base = sb.url("github")
        for repo in dict.fromkeys(d.repo for d in world.deploys):
            deployments = http.get(f"{base}/repos/{repo}/deployments", params={"environment": "production"},
                                   headers=gh).json()
            yield "github", "rest", "GET /repos/{owner}/{repo}/deployments", deployments
            for dep in deployments[:2]:
                yield "github", "rest", "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", http.get(
                    f"{base}/repos/{repo}/deployments/{dep['id']}/statuses", headers=gh).json()
                yield "github", "rest", "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls", http.get(
                    f"{base}/repos/{repo}/commits/{dep['sha']}/pulls", headers=gh).json()
            if len(deployments) >= 2:
                compare = http.get(f"{base}/repos/{repo}/compare/{deployments[1]['sha']}...{deployments[0]['sha']}",
                                   headers=gh).json()
                yield "github", "rest", "GET /repos/{owner}/{repo}/compare/{basehead}", compare
        for number in {d.pull_request.number for d in world.deploys if d.pull_request}:
            repo = next(d.repo for d in world.deploys if d.pull_request and d.pull_request.number == number)
            yield "github", "rest", "GET /repos/{owner}/{repo}/pulls/{pull_number}", http.get(
                f"{base}/repos/{repo}/pulls/{number}", headers=gh).json()
            yield "github", "rest", "GET /repos/{owner}/{repo}/pulls/{pull_number}/files", http.get(
                f"{base}/repos/{repo}/pulls/{number}/files", headers=gh).json()

        pd = {"Authorization": f"Token token={token}", "Accept": "application/vnd.pagerduty+json;version=2"}
        base = sb.url("pagerduty")
        if sc.alert.incident_id:
            yield "pagerduty", "rest", "GET /incidents/{id}", http.get(f"{base}/incidents/{sc.alert.incident_id}",
                                                                       headers=pd).json()
            yield "pagerduty", "rest", "GET /incidents/{id}/alerts", http.get(
                f"{base}/incidents/{sc.alert.incident_id}/alerts", headers=pd).json()
        yield "pagerduty", "rest", "GET /incidents", http.get(f"{base}/incidents", headers=pd).json()
        services = http.get(f"{base}/services", params={"limit": 1}, headers=pd).json()
        yield "pagerduty", "rest", "GET /services", services
        if services["more"]:
            yield "pagerduty", "rest", "GET /services", http.get(
                f"{base}/services", params={"limit": 1, "offset": 1, "sort_by": "name:desc"}, headers=pd).json()

        atl = {"Authorization": _basic("incident-brief@example.com", token)}
        base = sb.url("confluence")
        search = http.get(f"{base}/wiki/rest/api/search", params={"cql": "type = page", "limit": 2}, headers=atl).json()
        yield "atlassian", "confluence", "GET /wiki/rest/api/search", search
        if nxt := search.get("_links", {}).get("next"):
            yield "atlassian", "confluence", "GET /wiki/rest/api/search", http.get(
                f"{base}/wiki{nxt}", headers=atl).json()
        for runbook in world.runbooks:
            yield "atlassian", "confluence", "GET /wiki/rest/api/content/{id}", http.get(
                f"{base}/wiki/rest/api/content/{runbook.page_id}",
                params={"expand": "body.storage,version,space,metadata.labels"}, headers=atl).json()
        base = sb.url("jira")
        project = next(((c.jira or {}).get("project") for c in sc.catalog if c.name == sc.alert.service), None) or "OPS"
        jql = f"project = {project} ORDER BY updated DESC"
        # Server/Data Center's v2 search and Cloud's v3 search share the SearchResults shape.
        yield "atlassian", "jira", "GET /rest/api/3/search", http.get(
            f"{base}/rest/api/2/search", params={"jql": jql}, headers=atl).json()
        cloud = http.get(f"{base}/rest/api/3/search/jql", params={"jql": jql, "maxResults": 1}, headers=atl).json()
        yield "atlassian", "jira", "GET /rest/api/3/search/jql", cloud
        if token := cloud.get("nextPageToken"):
            yield "atlassian", "jira", "GET /rest/api/3/search/jql", http.get(
                f"{base}/rest/api/3/search/jql", params={"jql": jql, "nextPageToken": token}, headers=atl).json()
        # The writer's create (v2 on both; Cloud describes the same CreatedIssue under v3).
        created = http.post(f"{base}/rest/api/2/issue", headers=atl, json={"fields": {
            "project": {"key": project}, "summary": "conformance check", "issuetype": {"name": "Task"}}})
        assert created.status_code == 201, created.text
        yield "atlassian", "jira", "POST /rest/api/3/issue", created.json()


# How strictly each sandbox answer is held to the published schema. Datadog, Confluence search
# and Jira search and create carry every required field; PagerDuty's description marks fields required and
# non-null that PagerDuty itself sends as null (its own documented examples do), so nulls pass.
# GitHub's and Confluence's page objects are held to shapes and types: the sandbox leaves out
# dozens of required-but-unread URL fields (`*_url`, `_links` of a pull request, user avatars).
STRICTNESS: dict[str, Mode] = {"datadog": "strict", "atlassian GET /wiki/rest/api/search": "strict",
                               "atlassian GET /rest/api/3/search": "strict",
                               "atlassian GET /rest/api/3/search/jql": "strict",
                               "atlassian POST /rest/api/3/issue": "strict", "pagerduty": "nulls",
                               "github": "shapes", "atlassian GET /wiki/rest/api/content/{id}": "shapes"}


def strictness(vendor: str, operation: str) -> Mode:
    return STRICTNESS.get(f"{vendor} {operation}") or STRICTNESS[vendor]


@pytest.mark.parametrize("name", ["checkout-5xx-after-deploy", "payments-config-change", "orders-traffic-surge",
                                  "ledger-deploy-failed-status"])
def test_every_sandbox_answer_conforms_to_the_vendors_schema(name: str) -> None:
    sc = scenario(name)
    checked: list[str] = []
    problems: dict[str, list[str]] = {}
    with Sandbox(sc, systems=("datadog", "github", "pagerduty", "confluence", "jira")) as sb:
        for vendor, spec, operation, body in sandbox_answers(sc, sb):
            checked.append(operation)
            if errors := answer_errors(vendor, spec, operation, body, mode=strictness(vendor, operation)):
                problems[f"{vendor} {operation}"] = errors
    assert problems == {}
    # Every operation the connectors call was exercised, where the world has something to serve.
    world = sc.world
    expected = {"/api/v1/query", "/api/v1/search", "/api/v2/logs/events/search", "/api/v2/events", "/incidents",
                "/services", "/wiki/rest/api/search", "/rest/api/3/search", "/rest/api/3/search/jql",
                "/rest/api/3/issue"}
    expected |= {"/api/v1/monitor/{monitor_id}"} if world.monitors else set()
    expected |= {"/api/v1/dashboard/{dashboard_id}"} if world.dashboards else set()
    expected |= {"/wiki/rest/api/content/{id}"} if world.runbooks else set()
    expected |= {"/repos/{owner}/{repo}/deployments", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
                 "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"} if world.deploys else set()
    if any(sum(d.repo == repo and d.environment == "production" for d in world.deploys) >= 2
           for repo in {d.repo for d in world.deploys}):
        expected.add("/repos/{owner}/{repo}/compare/{basehead}")
    assert {op.split(" ", 1)[1] for op in checked} >= expected


def test_the_documented_metric_example_conforms() -> None:
    # Datadog's OpenAPI example of /api/v1/query, held to the strict schema (the recorded answers,
    # tests/fixtures/datadog/metrics, are checked above in "shapes" mode).
    example = {"query": "avg:system.cpu.idle{*}", "res_type": "time_series", "status": "ok",
               "series": [{"aggr": "avg", "display_name": "system.cpu.idle", "expression": "avg:system.cpu.idle{*}",
                           "metric": "system.cpu.idle", "pointlist": [[1681683300000.0, 77.62145685254418]],
                           "scope": "*"}]}
    assert answer_errors("datadog", "v1", "GET /api/v1/query", example) == []
    recorded = fixture("datadog", "metrics", "query_timeseries_points_returns_ok_response.json")
    assert recorded["res_type"] == example["res_type"]
