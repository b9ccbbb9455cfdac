"""Confluence and Jira over atlassian-python-api against the sandbox: reads, paging, and writes
refused in-process (never recorded). Their faults are in test_faults.py, with every connector's."""

from __future__ import annotations

from bot.core.models import EvidenceKind
from connectors.confluence import ConfluenceConnector
from connectors.jira import JiraReader, JiraWriter
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.faults import with_world


async def test_runbooks_are_found_by_labels_and_read_as_text(checkout: Scenario) -> None:
    with Sandbox(checkout, systems=["confluence"]) as sb:
        confluence = ConfluenceConnector(sb.settings().confluence)
        try:
            found = await confluence.find_runbooks("OPS", ["checkout-api"], "checkout-api 5xx rate above 5%")
        finally:
            await confluence.aclose()
        recorded = sb.recorder.requests("confluence")
    assert found, "the runbook labelled for the service is found"
    top = found[0]
    assert top.kind == EvidenceKind.RUNBOOK
    assert top.ref["page_id"] == "98001"
    assert "<" not in top.excerpt, "storage format is converted to readable text"
    assert (top.link or "").startswith("https://example.atlassian.net/wiki")
    assert all(r.method == "GET" for r in recorded)


async def test_open_issues_and_the_idempotency_label_are_searched(checkout: Scenario) -> None:
    with Sandbox(checkout, systems=["jira"]) as sb:
        writer = JiraWriter(sb.settings().jira)
        reader = JiraReader(sb.settings().jira)
        try:
            assert await reader.find_by_label("ib-0123456789abcdef01234567") is None
            created = await writer.create_issue("CHK", "checkout-api 5xx", "cited", "High",
                                                ["incident-brief", "ib-0123456789abcdef01234567"])
            assert await reader.find_by_label("ib-0123456789abcdef01234567") == created
            issues = await reader.open_issues("CHK", "checkout-api")
        finally:
            await reader.aclose()
            await writer.aclose()
    assert created["url"] == f"https://example.atlassian.net/browse/{created['key']}"
    assert [i.ref["key"] for i in issues if i.ref["key"] == created["key"]] == [created["key"]]
    assert len(sb.system("jira").created) == 1


async def test_jira_search_pages_until_its_bound(checkout: Scenario) -> None:
    issues = [{"key": f"CHK-{n}", "summary": f"checkout-api flake {n}", "labels": ["checkout-api"]}
              for n in range(1, 131)]
    with Sandbox(with_world(checkout, jira={"existing_issues": issues}), systems=["jira"]) as sb:
        settings = sb.settings().jira.model_copy(update={"max_pages": 2})
        reader = JiraReader(settings)
        try:
            found = await reader.open_issues("CHK", "checkout-api")
        finally:
            await reader.aclose()
        searches = sb.recorder.requests("jira", path_prefix="/rest/api/2/search")
    assert len(found) == 100, "two pages of 50, then the bound stops it"
    assert [r.query.get("startAt") for r in searches] == [["0"], ["50"]]
    assert len({e.id for e in found}) == 100


async def test_confluence_search_follows_next_links_within_its_bound(checkout: Scenario) -> None:
    pages = [{"id": f"rb-{n}", "page_id": str(99000 + n), "space": "OPS", "title": f"checkout-api runbook {n}",
              "labels": ["checkout-api"], "body": f"<p>Step {n}: check the checkout-api dashboards.</p>"}
             for n in range(1, 61)]
    with Sandbox(with_world(checkout, runbooks=pages), systems=["confluence"]) as sb:
        settings = sb.settings().confluence.model_copy(update={"max_pages": 2})
        confluence = ConfluenceConnector(settings)
        try:
            found = await confluence.find_runbooks("OPS", ["checkout-api"], "")
        finally:
            await confluence.aclose()
        searches = [r for r in sb.recorder.requests("confluence") if "search" in r.path]
    assert len(found) == 3, "only the best few pages are read"
    assert len(searches) == 2, "two pages of results, then the bound stops it"
