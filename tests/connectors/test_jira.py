"""Jira, both sides of the wire: the sandbox's REST v2 fake, the read-only reader and the writer.

Every test drives the real `atlassian-python-api` client (requests) against
`Sandbox(scenario, systems=["jira"])`; nothing below the library is mocked.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from bot.core.config import JiraSettings
from bot.core.errors import SourceUnavailable
from bot.core.models import EvidenceKind, Source, evidence_id
from connectors.jira import JiraReader, JiraWriter, is_cloud
from sandbox.scenario import Scenario, parse_scenario
from sandbox.server import Sandbox

TOKEN = "sandbox-api-token"
USER = "incident-brief@example.com"
LABEL = "ib-0123456789abcdef01234567"

OPEN_LABELLED = {"key": "CHK-7", "summary": "Checkout retries exhaust the pool", "status": "In Progress",
                 "labels": ["checkout-api"]}
OPEN_MENTIONED = {"key": "CHK-8", "summary": "checkout api returns 502 on refunds", "status": "Open"}
DONE = {"key": "CHK-100", "summary": "Flaky checkout-api gift-card test", "status": "Done",
        "labels": ["checkout-api"]}
UNRELATED = {"key": "CHK-9", "summary": "Update the style guide", "status": "Open"}
OTHER_PROJECT = {"key": "PAY-3", "summary": "checkout-api callbacks slow", "status": "Open",
                 "labels": ["checkout-api"]}


def scenario(issues: list[dict[str, Any]] | None = None, errors: dict[str, str] | None = None) -> Scenario:
    return parse_scenario({
        "version": 1, "id": "jira-test", "title": "jira test", "now": "2026-05-12T14:05:00Z",
        "alert": {"via": "cli", "title": "checkout-api 5xx", "service": "checkout-api",
                  "triggered_at": "2026-05-12T14:01:00Z"},
        "catalog": [{"name": "checkout-api", "jira": {"project": "CHK"}}],
        "world": {"jira": {"existing_issues": issues if issues is not None else
                           [OPEN_LABELLED, OPEN_MENTIONED, DONE, UNRELATED, OTHER_PROJECT]},
                  "faults": {"errors": errors or {}}},
        "expect": {"cause": {"kind": "unknown"}},
    })


def settings(sb: Sandbox, **overrides: Any) -> JiraSettings:
    values: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 2, **overrides}
    return JiraSettings.model_validate({**sb.settings().jira.model_dump(), **values})


async def open_issues(sb: Sandbox, project: str = "CHK", **overrides: Any) -> list[Any]:
    reader = JiraReader(settings(sb, **overrides))
    try:
        return await reader.open_issues(project, "checkout-api")
    finally:
        await reader.aclose()


async def create(sb: Sandbox, project: str = "CHK", summary: str = "checkout-api 5xx after v2.3.1",
                 labels: list[str] | None = None, priority: str = "High", **overrides: Any) -> dict[str, str]:
    writer = JiraWriter(settings(sb, **overrides))
    try:
        return await writer.create_issue(project, summary, "Cited brief: deploy 9f1c2ab.", priority,
                                         ["incident-brief", LABEL] if labels is None else labels)
    finally:
        await writer.aclose()


async def find_by_label(sb: Sandbox, label: str = LABEL) -> dict[str, str] | None:
    reader = JiraReader(settings(sb))
    try:
        return await reader.find_by_label(label)
    finally:
        await reader.aclose()


# --- reading ------------------------------------------------------------------------------


async def test_open_issues_on_the_service_are_evidence_and_done_ones_are_not() -> None:
    with Sandbox(scenario(), systems=["jira"]) as sb:
        found = await open_issues(sb)
        [search] = sb.recorder.requests("jira")

    assert [e.ref["key"] for e in found] == ["CHK-7", "CHK-8"]
    labelled = found[0]
    assert labelled.id == evidence_id(EvidenceKind.JIRA_ISSUE, "CHK-7")
    assert labelled.kind is EvidenceKind.JIRA_ISSUE
    assert labelled.source is Source.JIRA
    assert labelled.title == "CHK-7: Checkout retries exhaust the pool"
    assert labelled.excerpt == ("Checkout retries exhaust the pool "
                                "(status In Progress; priority Medium; labels checkout-api)")
    assert labelled.data == {"key": "CHK-7", "status": "In Progress", "labels": ["checkout-api"],
                             "priority": "Medium"}
    assert labelled.link == "https://example.atlassian.net/browse/CHK-7"
    assert labelled.timestamp is not None
    assert labelled.provenance.tool == "jira.search"

    assert (search.method, search.path) == ("GET", "/rest/api/2/search")
    assert search.query["jql"] == ['project = "CHK" AND statusCategory != Done AND (labels = "checkout-api" '
                                   'OR text ~ "checkout api") ORDER BY updated DESC']
    assert search.query["fields"] == ["summary,status,labels,priority,issuetype,updated,created"]
    assert (search.query["startAt"], search.query["maxResults"]) == (["0"], ["50"])
    assert search.provenance == ("CHK-7", "CHK-8")


async def test_an_unknown_project_is_a_clear_gap() -> None:
    with Sandbox(scenario(), systems=["jira"]) as sb, pytest.raises(SourceUnavailable) as err:
        await open_issues(sb, project="NOPE")
    assert err.value.reason == "HTTP 400: The value 'NOPE' does not exist for the field 'project'."


async def test_find_by_label_is_none_then_the_filed_issue() -> None:
    with Sandbox(scenario(), systems=["jira"]) as sb:
        assert await find_by_label(sb) is None
        created = await create(sb)
        found = await find_by_label(sb)
        searches = sb.recorder.requests("jira", tool="jira.search")
    assert found == created
    assert found == {"key": "CHK-101", "id": found["id"], "url": "https://example.atlassian.net/browse/CHK-101"}
    assert [s.query["jql"] for s in searches] == [[f'labels = "{LABEL}" ORDER BY created ASC']] * 2
    assert all(s.query["maxResults"] == ["1"] for s in searches)


async def test_find_by_label_returns_the_oldest_issue_and_refuses_a_bad_label() -> None:
    older = {"key": "CHK-3", "summary": "first filing", "labels": [LABEL]}
    with Sandbox(scenario([older]), systems=["jira"]) as sb:
        await create(sb)
        assert (await find_by_label(sb) or {}).get("key") == "CHK-3"
        with pytest.raises(ValueError, match="not a valid Jira label"):
            await find_by_label(sb, 'x" OR project = "PAY')
        assert len(sb.recorder.requests("jira", tool="jira.search")) == 1


# --- pagination ---------------------------------------------------------------------------


def many(count: int) -> list[dict[str, Any]]:
    return [{"key": f"CHK-{n}", "summary": f"checkout-api flake {n}", "labels": ["checkout-api"]}
            for n in range(1, count + 1)]


async def test_search_pages_by_start_at_until_the_total() -> None:
    with Sandbox(scenario(many(130)), systems=["jira"]) as sb:
        found = await open_issues(sb, max_pages=5)
        searches = sb.recorder.requests("jira", tool="jira.search")
    assert [r.query["startAt"] for r in searches] == [["0"], ["50"], ["100"]]
    assert len({e.id for e in found}) == 130


async def test_search_pagination_stops_at_max_pages() -> None:
    with Sandbox(scenario(many(130)), systems=["jira"]) as sb:
        found = await open_issues(sb, max_pages=2)
        searches = sb.recorder.requests("jira", tool="jira.search")
    assert [r.query["startAt"] for r in searches] == [["0"], ["50"]]
    assert len(found) == 100


# --- the one write ------------------------------------------------------------------------


async def test_create_issue_files_exactly_the_fields_it_previews() -> None:
    with Sandbox(scenario(), systems=["jira"]) as sb:
        created = await create(sb, summary="checkout-api   5xx\nafter v2.3.1")
        [post] = sb.recorder.requests("jira")
        filed = sb.system("jira").created
        writer = JiraWriter(settings(sb))
        preview = writer.issue_fields("CHK", "checkout-api   5xx\nafter v2.3.1", "Cited brief: deploy 9f1c2ab.",
                                      "High", ["incident-brief", LABEL])
        await writer.aclose()
    assert created == {"key": "CHK-101", "id": created["id"], "url": "https://example.atlassian.net/browse/CHK-101"}
    assert created["id"].isdigit()
    assert (post.method, post.path, post.status) == ("POST", "/rest/api/2/issue", 201)
    assert post.json() == {"fields": preview}
    assert preview == {"project": {"key": "CHK"}, "summary": "checkout-api 5xx after v2.3.1",
                       "description": "Cited brief: deploy 9f1c2ab.", "issuetype": {"name": "Task"},
                       "priority": {"name": "High"}, "labels": ["incident-brief", LABEL]}
    assert [c["key"] for c in filed] == ["CHK-101"]
    assert filed[0]["fields"] == preview


async def test_long_summaries_and_descriptions_are_cut_to_what_jira_takes() -> None:
    with Sandbox(scenario(), systems=["jira"]) as sb:
        writer = JiraWriter(settings(sb))
        try:
            await writer.create_issue("CHK", "x" * 400, "d" * 40_000, "High", ["incident-brief"])
        finally:
            await writer.aclose()
        [filed] = sb.system("jira").created
    assert len(filed["fields"]["summary"]) == 255
    assert filed["fields"]["summary"].endswith("…")
    assert len(filed["fields"]["description"]) == 32_000


@pytest.mark.parametrize(("project", "summary", "priority", "labels", "problem"), [
    ("chk", "s", "High", [], "not a Jira project key"),
    ("CHK", "  \n ", "High", [], "needs a summary"),
    ("CHK", "s", "Urgent", [], "priority must be one of"),
    ("CHK", "s", "High", ["two words"], "not a valid Jira label"),
    ("CHK", "s", "High", [""], "not a valid Jira label"),
])
async def test_bad_arguments_are_refused_before_anything_is_sent(
        project: str, summary: str, priority: str, labels: list[str], problem: str) -> None:
    with Sandbox(scenario(), systems=["jira"]) as sb:
        with pytest.raises(ValueError, match=problem):
            await create(sb, project=project, summary=summary, priority=priority, labels=labels)
        assert sb.recorder.requests() == []


async def test_jira_refusing_the_ticket_is_reported_with_its_reason() -> None:
    with Sandbox(scenario(), systems=["jira"]) as sb:
        with pytest.raises(SourceUnavailable) as err:
            await create(sb, project="NOPE")
        [post] = sb.recorder.requests("jira")
    assert (err.value.source, err.value.tool) == ("jira", "jira.create_issue")
    assert err.value.reason == "HTTP 400: valid project is required"
    assert post.status == 400
    assert sb.system("jira").created == []


async def test_a_500_on_create_is_not_retried_so_no_ticket_is_doubled() -> None:
    with Sandbox(scenario(errors={"jira.create_issue": "http_500"}), systems=["jira"]) as sb:
        with pytest.raises(SourceUnavailable) as err:
            await create(sb, max_retries=2)
        posts = sb.recorder.requests("jira", method="POST")
    assert err.value.reason == ("HTTP 500 after 1 attempt (a POST is not retried when the server may have "
                                "acted on it)")
    assert len(posts) == 1


async def test_a_timeout_on_create_is_not_retried() -> None:
    with Sandbox(scenario(errors={"jira.create_issue": "timeout"}), systems=["jira"]) as sb:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable) as err:
            await create(sb, timeout_s=0.3, max_retries=2)
        assert time.monotonic() - started < 3
        posts = sb.recorder.requests("jira", method="POST")  # a held request is recorded as it arrives
    assert err.value.reason == ("timed out after 1 attempt (a POST is not retried when the server may have "
                                "acted on it)")
    assert [p.fault for p in posts] == ["timeout"]


async def test_a_429_on_create_is_retried_after_retry_after() -> None:
    with Sandbox(scenario(errors={"jira.create_issue": "http_429"}), systems=["jira"]) as sb:
        with pytest.raises(SourceUnavailable, match="HTTP 429 after 2 attempts"):
            await create(sb, max_retries=1)
        posts = sb.recorder.requests("jira", method="POST")
    assert [p.fault for p in posts] == ["http_429", "http_429"]
    assert posts[1].at - posts[0].at >= 0.95


async def test_a_malformed_create_response_is_reported() -> None:
    with Sandbox(scenario(errors={"jira.create_issue": "malformed"}), systems=["jira"]) as sb, \
            pytest.raises(SourceUnavailable, match="malformed JSON in create response"):
        await create(sb)


async def test_create_against_a_jira_that_is_down_is_retried_then_reported() -> None:
    with Sandbox(scenario(errors={"jira": "refused"}), systems=["jira"]) as sb:
        with pytest.raises(SourceUnavailable, match="connection refused after 2 attempts"):
            await create(sb, max_retries=1)  # never connected: nothing can have been filed
        assert sb.recorder.requests() == []


# --- read faults (every fault on every connector: test_faults.py) -------------------------


async def test_a_wrong_token_is_a_clear_gap_and_a_bearer_token_works() -> None:
    with Sandbox(scenario(), systems=["jira"]) as sb:
        with pytest.raises(SourceUnavailable) as err:
            await open_issues(sb, token="not-the-token")
        found = await open_issues(sb, username="")
    assert err.value.reason == ("HTTP 401: You are not authenticated. Authentication required to perform "
                                "this operation.")
    assert [e.ref["key"] for e in found] == ["CHK-7", "CHK-8"]


# --- the sandbox speaks Jira ------------------------------------------------------------------


def test_sandbox_wire_format_validation_and_auth() -> None:
    with Sandbox(scenario(many(3)), systems=["jira"]) as sb:
        base = sb.url("jira") + "/rest/api/2"
        client = requests.Session()
        client.auth = (USER, TOKEN)
        page = client.get(base + "/search", params={"jql": "project = CHK", "maxResults": "2",
                                                    "fields": "summary,status"}).json()
        assert (page["startAt"], page["maxResults"], page["total"]) == (0, 2, 3)
        assert [i["key"] for i in page["issues"]] == ["CHK-1", "CHK-2"]
        assert set(page["issues"][0]["fields"]) == {"summary", "status"}
        assert page["issues"][0]["fields"]["status"]["statusCategory"]["key"] == "new"
        rest = client.get(base + "/search", params={"jql": "project = CHK", "startAt": "2"}).json()
        assert [i["key"] for i in rest["issues"]] == ["CHK-3"]
        assert {"summary", "labels", "priority", "issuetype", "project", "created", "updated"} <= set(
            rest["issues"][0]["fields"])

        bad = client.get(base + "/search", params={"jql": "colour = red"})
        assert bad.status_code == 400
        assert bad.json()["errorMessages"] == ["Field 'colour' does not exist or you do not have permission "
                                               "to view it."]
        assert client.get(base + "/search", params={"jql": "project = (("}).status_code == 400

        made = client.post(base + "/issue", json={"fields": {
            "project": {"key": "CHK"}, "summary": "s", "issuetype": {"name": "Task"}}})
        assert made.status_code == 201
        assert set(made.json()) == {"id", "key", "self"}
        assert made.json()["key"] == "CHK-4"
        assert client.get(base + f"/issue/{made.json()['key']}").json()["fields"]["summary"] == "s"
        rejected = client.post(base + "/issue", json={"fields": {
            "project": {"key": "CHK"}, "summary": "a\nb", "issuetype": {"name": "Nope"},
            "labels": ["has space"], "assignee": {"name": "x"}}})
        assert rejected.status_code == 400
        assert set(rejected.json()["errors"]) == {"summary", "issuetype", "labels", "assignee"}
        assert client.post(base + "/issue", data=b"{not json").status_code == 400

        bearer = requests.get(base + "/search", params={"jql": "project = CHK"},
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert bearer.status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            denied = requests.post(base + "/issue", json={}, headers=headers, timeout=5)
            assert denied.status_code == 401
            assert denied.json()["errorMessages"]
    assert [c["key"] for c in sb.system("jira").created] == ["CHK-4"]


# --- Jira Cloud: the enhanced search -------------------------------------------------------------


def test_cloud_is_told_from_the_host() -> None:
    assert is_cloud("https://acme.atlassian.net")
    assert is_cloud("https://acme.jira.com/")
    assert not is_cloud("https://jira.acme.internal")
    assert not is_cloud("http://127.0.0.1:8080")
    assert not is_cloud("https://atlassian.net.evil.example")


async def test_cloud_search_follows_next_page_tokens_within_its_bound() -> None:
    with Sandbox(scenario(many(130)), systems=["jira"]) as sb:
        reader = JiraReader(settings(sb, max_pages=5), cloud=True)
        bounded = JiraReader(settings(sb, max_pages=2), cloud=True)
        try:
            found = await reader.open_issues("CHK", "checkout-api")
            first_two = await bounded.open_issues("CHK", "checkout-api")
            by_label = await reader.find_by_label("checkout-api")
        finally:
            await reader.aclose()
            await bounded.aclose()
        searches = sb.recorder.requests("jira", tool="jira.search")
    assert {r.path for r in searches} == {"/rest/api/3/search/jql"}
    tokens = [r.query.get("nextPageToken") for r in searches]
    assert tokens[0] is None
    assert tokens[1] is not None
    assert tokens[2] is not None
    assert tokens[1] != tokens[2]
    assert len(searches) == 3 + 2 + 1
    assert len({e.id for e in found}) == 130
    assert len(first_two) == 100
    assert by_label is not None
    assert by_label["key"] == "CHK-1"
    assert found[0].provenance.request.startswith("GET /rest/api/3/search/jql?jql=")


async def test_cloud_reader_reads_through_the_enhanced_search_only() -> None:
    # That nothing else gets through its session is test_wire_allowlists.py's ("jira cloud reader").
    with Sandbox(scenario(), systems=["jira"]) as sb:
        reader = JiraReader(settings(sb), cloud=True)
        try:
            found = await reader.open_issues("CHK", "checkout-api")
        finally:
            await reader.aclose()
        recorded = sb.recorder.requests()
    assert [e.ref["key"] for e in found] == ["CHK-7", "CHK-8"]
    assert [(r.method, r.path) for r in recorded] == [("GET", "/rest/api/3/search/jql")]


def test_sandbox_cloud_search_wire_format() -> None:
    with Sandbox(scenario([*many(3), {"key": "CHK-50", "summary": "s", "labels": ["x"]}]),
                 systems=["jira"]) as sb:
        client = requests.Session()
        client.auth = (USER, TOKEN)
        url = sb.url("jira") + "/rest/api/3/search/jql"
        first = client.get(url, params={"jql": "labels = checkout-api", "maxResults": "2"}).json()
        assert set(first) == {"issues", "nextPageToken", "isLast"}
        assert first["isLast"] is False
        last = client.get(url, params={"jql": "labels = checkout-api", "maxResults": "2",
                                       "nextPageToken": first["nextPageToken"]}).json()
        assert [i["key"] for i in last["issues"]] == ["CHK-3"]
        assert last["isLast"] is True
        assert "nextPageToken" not in last
        assert client.get(url, params={"jql": "labels = x", "nextPageToken": "bogus"}).status_code == 400
        assert client.get(url).status_code == 400  # Cloud refuses an unbounded query
