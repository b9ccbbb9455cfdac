"""Each connector's reference check (what `doctor` asks of every catalog reference), over HTTP
against the sandbox: a reference the source has is `found`, one its source says it lacks is
`missing` with the source's own words, and a source that cannot answer raises, so a doctor can
never call a reference missing from an outage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
from requests.adapters import HTTPAdapter

from bot.core.config import ConfluenceSettings, GitHubSettings
from bot.core.errors import SourceUnavailable
from bot.core.models import ReferenceCheck
from connectors.confluence import ConfluenceConnector
from connectors.datadog import DatadogConnector
from connectors.github import GitHubConnector
from connectors.jira import JiraReader
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.scenarios import with_faults


@dataclass(frozen=True)
class Sources:
    datadog: DatadogConnector
    github: GitHubConnector
    confluence: ConfluenceConnector
    jira: JiraReader


@asynccontextmanager
async def connected(sc: Scenario) -> AsyncIterator[tuple[Sandbox, Sources]]:
    with Sandbox(sc, systems=("datadog", "github", "confluence", "jira")) as sb:
        settings = sb.settings()
        c = Sources(DatadogConnector(settings.datadog), GitHubConnector(settings.github),
                    ConfluenceConnector(settings.confluence), JiraReader(settings.jira))
        try:
            yield sb, c
        finally:
            for connector in (c.datadog, c.github, c.confluence, c.jira):
                await connector.aclose()


async def test_a_reference_the_source_has_is_found(checkout: Scenario) -> None:
    async with connected(checkout) as (sb, c):
        found = [await c.datadog.dashboard_check("chk-ovr-001"), await c.github.repo_check("acme/checkout-api"),
                 await c.confluence.space_check("OPS"), await c.jira.project_check("CHK")]
        queries = sb.recorder.requests("datadog", tool="datadog.query_metrics")
    assert found == [ReferenceCheck(state="found", detail="Checkout overview"),
                     ReferenceCheck(state="found", detail="deployments readable"),
                     ReferenceCheck(state="found", detail="1 page(s)"),
                     ReferenceCheck(state="found", detail="project searchable")]
    assert queries == [], "the dashboard's widget queries are not run"


async def test_a_reference_the_source_lacks_is_missing_in_its_own_words(checkout: Scenario) -> None:
    async with connected(checkout) as (sb, c):
        checks = [await c.datadog.dashboard_check("gone-404"), await c.github.repo_check("acme/renamed-away"),
                  await c.confluence.space_check("NOPE"), await c.jira.project_check("NOPE")]
        sent = len(sb.recorder.requests())
    assert checks == [
        ReferenceCheck(state="missing", detail="HTTP 404: not found"),
        ReferenceCheck(state="missing", detail="HTTP 404: no such repository, or the token cannot see it"),
        # Confluence finds nothing in a space it does not have (Cloud) or the token cannot see.
        ReferenceCheck(state="empty", detail="no pages found"),
        ReferenceCheck(state="missing", detail="HTTP 400: The value 'NOPE' does not exist for the field 'project'."),
    ]
    assert sent == 4, "one request per reference, none retried"


async def test_jira_cloud_refuses_an_unknown_project_the_same_way(checkout: Scenario) -> None:
    with Sandbox(checkout, systems=("jira",)) as sb:
        reader = JiraReader(sb.settings().jira, cloud=True)
        try:
            checks = [await reader.project_check("CHK"), await reader.project_check("NOPE")]
        finally:
            await reader.aclose()
        paths = {r.path for r in sb.recorder.requests("jira")}
    assert [c.state for c in checks] == ["found", "missing"]
    assert paths == {"/rest/api/3/search/jql"}


async def test_confluence_refusing_the_search_of_a_space_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Confluence Data Center 9.3 answers a search of a space it does not have with this 400
    # (CONFSERVER-101465); served under the guard, so the library and the guard read it as sent.
    def refuse(self: HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response.url, response.request = 400, request.url or "", request
        response._content = json.dumps({"statusCode": 400, "message": "parameters should not be empty",
                                        "reason": "Bad Request"}).encode()
        response.headers["Content-Type"] = "application/json"
        return response

    monkeypatch.setattr(HTTPAdapter, "send", refuse)
    confluence = ConfluenceConnector(ConfluenceSettings(base_url="https://wiki.example.test/wiki", max_retries=0))
    try:
        check = await confluence.space_check("GONE")
    finally:
        await confluence.aclose()
    assert check == ReferenceCheck(state="missing", detail="HTTP 400: parameters should not be empty Bad Request")


@pytest.mark.parametrize(("tool", "check"), [
    ("datadog.get_dashboard", lambda c: c.datadog.dashboard_check("chk-ovr-001")),
    ("github.list_deployments", lambda c: c.github.repo_check("acme/checkout-api")),
    ("confluence.search", lambda c: c.confluence.space_check("OPS")),
    ("jira.search", lambda c: c.jira.project_check("CHK")),
])
async def test_a_source_that_cannot_answer_raises_rather_than_calling_the_reference_missing(
        checkout: Scenario, tool: str, check: Callable[[Sources], Awaitable[ReferenceCheck]]) -> None:
    async with connected(with_faults(checkout, errors={tool: "http_500"})) as (_sb, c):
        with pytest.raises(SourceUnavailable, match=r"HTTP 500 after 3 attempts"):
            await check(c)


def _github(status: int, headers: dict[str, str] | None = None) -> GitHubConnector:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or {}, json={"message": "x"})

    return GitHubConnector(GitHubSettings(base_url="https://api.github.test", max_retries=0),
                           transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(("status", "headers", "detail"), [
    (301, {"Location": "https://api.github.test/repositories/42/deployments?per_page=1"},
     "HTTP 301: moved (renamed or transferred?); name its new owner/name in the catalog"),
    (403, None, "HTTP 403: the token may not read its deployments"),
])
async def test_a_renamed_repository_or_one_whose_deployments_the_token_cannot_read_is_missing(
        status: int, headers: dict[str, str] | None, detail: str) -> None:
    github = _github(status, headers)
    try:
        assert await github.repo_check("acme/old-name") == ReferenceCheck(state="missing", detail=detail)
    finally:
        await github.aclose()


async def test_a_malformed_repository_name_is_missing_without_a_request() -> None:
    github = _github(500)
    try:
        check = await github.repo_check("not a repo")
    finally:
        await github.aclose()
    assert check == ReferenceCheck(state="missing", detail="not a repository name (want owner/name)")
