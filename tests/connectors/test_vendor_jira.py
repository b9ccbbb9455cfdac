"""Jira's answers (tests/fixtures/atlassian/jira_*): Cloud's and Server/Data Center's search
results and created-issue answers, replayed over HTTP through atlassian-python-api and
`JiraReader` / `JiraWriter`. The evidence and the ticket reference are checked field by field
against the values read plainly from each answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.core.config import JiraSettings
from bot.core.errors import SourceUnavailable
from bot.core.models import EvidenceKind, evidence_id
from connectors.jira import SEARCH_FIELDS, JiraReader, JiraWriter
from tests.helpers.replay import Canned, ReplayApp, fixture, replaying

WEB = "https://jira.example.com"
SERVER_SEARCH = "/rest/api/2/search"
CLOUD_SEARCH = "/rest/api/3/search/jql"


@asynccontextmanager
async def reader(answers: list[Canned], *, cloud: bool) -> AsyncIterator[tuple[JiraReader, ReplayApp]]:
    async with replaying(answers) as server:
        jira = JiraReader(JiraSettings(base_url=server.base_url, web_url=WEB, token="t", max_retries=0), cloud=cloud)
        try:
            yield jira, server
        finally:
            await jira.aclose()


def jira_answers(body: dict[str, Any], path: str, first_page: dict[str, str]) -> list[Canned]:
    return [Canned("GET", path, body, query=first_page),
            Canned("GET", path, {"startAt": 1, "maxResults": 50, "total": 1, "issues": []})]


async def test_jira_server_search_results() -> None:
    body = fixture("atlassian", "jira_cloud_search.json")  # the v2 search shape Server also answers
    async with reader(jira_answers(body, SERVER_SEARCH, {"startAt": "0"}), cloud=False) as (jira, _server):
        [issue] = await jira.open_issues("PROJ", "checkout-api")
    assert issue.id == evidence_id(EvidenceKind.JIRA_ISSUE, "PROJ-123")
    assert issue.title == "PROJ-123: Test Issue Summary"
    assert issue.excerpt == "Test Issue Summary (status In Progress; priority Medium)"
    assert issue.timestamp == datetime(2024, 1, 2, 15, 30, tzinfo=UTC)
    assert issue.link == "https://jira.example.com/browse/PROJ-123"
    assert issue.data == {"key": "PROJ-123", "status": "In Progress", "labels": [], "priority": "Medium"}


async def test_jira_documented_search_example() -> None:
    body = fixture("atlassian", "jira_documented_search.json")
    async with reader(jira_answers(body, SERVER_SEARCH, {"startAt": "0"}), cloud=False) as (jira, _server):
        [issue] = await jira.open_issues("ED", "checkout-api")
    assert (issue.ref, issue.data["status"]) == ({"key": "ED-1"}, "unknown")  # the example lists no status field
    assert issue.title == "ED-1"


async def test_jira_cloud_search_jql_results() -> None:
    body = fixture("atlassian", "jira_cloud_search.json")
    async with reader([Canned("GET", CLOUD_SEARCH, body)], cloud=True) as (jira, server):
        [issue] = await jira.open_issues("PROJ", "checkout-api")
    [sent] = server.received
    assert "statusCategory != Done" in sent.query["jql"][0]
    assert issue.data["key"] == "PROJ-123"


def _expected(issue: dict[str, Any]) -> dict[str, Any]:
    """What an issue of a search answer says, read plainly (no connector code)."""
    fields = issue.get("fields") or {}
    return {"key": issue["key"], "status": (fields.get("status") or {}).get("name") or "unknown",
            "labels": fields.get("labels") or [], "priority": (fields.get("priority") or {}).get("name")}


async def test_a_data_center_search_answer_becomes_open_issues_field_by_field() -> None:
    # Atlassian's own mock of Jira Data Center's GET /rest/api/2/search (its VS Code extension's
    # end-to-end tests): offset paging, every issue on the one page (total 5).
    body = fixture("atlassian", "jira_dc_search.json")
    assert (body["startAt"], body["total"], len(body["issues"])) == (0, 5, 5)
    async with reader([Canned("GET", SERVER_SEARCH, body)], cloud=False) as (jira, server):
        issues = await jira.open_issues("BTS", "checkout-api")
    [sent] = server.received  # the page held every issue: no second request
    assert sent.query["startAt"] == ["0"]
    assert sent.query["fields"] == [SEARCH_FIELDS]
    assert [i.data for i in issues] == [_expected(raw) for raw in body["issues"]]
    first = issues[0]
    assert first.id == evidence_id(EvidenceKind.JIRA_ISSUE, "BTS-5")
    assert first.title == "BTS-5: Fix Database Connection Errors"
    assert first.excerpt == "Fix Database Connection Errors (status To Do; priority Medium)"
    assert first.link == f"{WEB}/browse/BTS-5"
    # Jira writes offsets without a colon (-0700), which must still parse as the moment it is.
    assert first.timestamp == datetime(2025, 5, 10, 0, 14, 1, 264000, tzinfo=timezone(timedelta(hours=-7)))
    assert [i.data["status"] for i in issues] == ["To Do", "In Progress", "To Do", "In Progress", "In Review"]
    assert first.provenance.request.startswith(f"GET {SERVER_SEARCH}?jql=project = \"BTS\"")


async def test_the_documented_server_search_is_paged_by_start_at() -> None:
    # Atlassian's Jira Server tutorial answer ("Query issues"): 2 issues shown of a total of 6,
    # so the reader asks for the next page from startAt=2. The tutorial's later pages are not
    # vendored; the second request is answered with an empty page of the same envelope.
    body = fixture("atlassian", "jira_server_search_tutorial.json")
    assert (body["startAt"], body["total"], len(body["issues"])) == (0, 6, 2)
    rest = {key: value for key, value in body.items() if key != "issues"} | {"startAt": 2, "issues": []}
    answers = [Canned("GET", SERVER_SEARCH, body, query={"startAt": "0"}),
               Canned("GET", SERVER_SEARCH, rest, query={"startAt": "2"})]
    async with reader(answers, cloud=False) as (jira, server):
        issues = await jira.open_issues("BULK", "checkout-api")
    assert [r.query["startAt"] for r in server.received] == [["0"], ["2"]]
    assert [i.title for i in issues] == ["BULK-62: testing", "BULK-47: Cheese v1 2.0 issue"]
    assert [i.data for i in issues] == [_expected(raw) for raw in body["issues"]]
    assert issues[0].excerpt == "testing (status unknown)"  # the tutorial asked for no status field
    assert issues[0].timestamp is None


async def test_the_documented_cloud_search_jql_answer() -> None:
    # The documented example of Cloud's GET /rest/api/3/search/jql: token paging, `isLast: true`
    # and no `nextPageToken`, so one request; the example lists no summary or status.
    body = fixture("atlassian", "jira_cloud_search_jql_documented.json")
    assert body["isLast"] is True
    assert "nextPageToken" not in body
    async with reader([Canned("GET", CLOUD_SEARCH, body)], cloud=True) as (jira, server):
        [issue] = await jira.open_issues("ED", "checkout-api")
    [sent] = server.received
    assert "startAt" not in sent.query  # Cloud pages by token, never by offset
    assert issue.id == evidence_id(EvidenceKind.JIRA_ISSUE, "ED-1")
    assert (issue.title, issue.excerpt) == ("ED-1", "(status unknown)")
    assert issue.timestamp is None  # the example's `updated` is the number 1, not a date
    assert issue.data == _expected(body["issues"][0])


async def test_cloud_search_follows_next_page_token_until_is_last() -> None:
    # The documented answer as the last page, after a first page that carries a token.
    last = fixture("atlassian", "jira_cloud_search_jql_documented.json")
    first = fixture("atlassian", "jira_dc_search.json") | {"isLast": False, "nextPageToken": "EgQIlMIC"}
    answers = [Canned("GET", CLOUD_SEARCH, last, query={"nextPageToken": "EgQIlMIC"}),
               Canned("GET", CLOUD_SEARCH, first)]
    async with reader(answers, cloud=True) as (jira, server):
        issues = await jira.open_issues("BTS", "checkout-api")
    assert [r.query.get("nextPageToken") for r in server.received] == [None, ["EgQIlMIC"]]
    assert [i.data["key"] for i in issues] == ["BTS-5", "BTS-4", "BTS-1", "BTS-3", "BTS-6", "ED-1"]


@asynccontextmanager
async def writer(answer: dict[str, Any], status: int = 201) -> AsyncIterator[tuple[JiraWriter, ReplayApp]]:
    async with replaying([Canned("POST", "/rest/api/2/issue", answer, status=status)]) as server:
        jira = JiraWriter(JiraSettings(base_url=server.base_url, web_url=WEB, token="t", max_retries=0), cloud=False)
        try:
            yield jira, server
        finally:
            await jira.aclose()


async def test_the_documented_created_issue_answer_becomes_the_ticket_reference() -> None:
    # Jira's documented 201 for a create: id, key, self and the result of any requested transition.
    answer = fixture("atlassian", "jira_created_issue_documented.json")
    assert set(answer) == {"id", "key", "self", "transition"}
    async with writer(answer) as (jira, server):
        created = await jira.create_issue("ED", "checkout-api 5xx", "Cited brief.", "High", ["incident-brief"])
    assert created == {"key": "ED-24", "id": "10000", "url": f"{WEB}/browse/ED-24"}
    [sent] = server.received
    assert (sent.method, sent.path) == ("POST", "/rest/api/2/issue")
    assert sent.json() == {"fields": jira.issue_fields("ED", "checkout-api 5xx", "Cited brief.", "High",
                                                       ["incident-brief"])}


async def test_a_created_answer_without_a_key_is_refused() -> None:
    answer = {k: v for k, v in fixture("atlassian", "jira_created_issue_documented.json").items() if k != "key"}
    async with writer(answer) as (jira, _server):
        with pytest.raises(SourceUnavailable, match="malformed JSON in create response"):
            await jira.create_issue("ED", "checkout-api 5xx", "Cited brief.", "High", ["incident-brief"])
