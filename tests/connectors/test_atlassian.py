"""Confluence and Jira over atlassian-python-api against the sandbox: reads, every failure
mode as a clear `SourceUnavailable`, and writes refused in-process (never recorded)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.core.errors import SourceUnavailable, WireRefused
from bot.core.models import EvidenceKind
from connectors.confluence import ConfluenceConnector
from connectors.jira import JiraReader, JiraWriter
from sandbox.scenario import Scenario, parse_scenario
from sandbox.server import Sandbox


def with_faults(base: Scenario, errors: dict[str, str]) -> Scenario:
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw["world"]["faults"] = {"errors": errors}
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} with faults")


def quick(sb: Sandbox, name: str) -> Any:
    """The sandbox's settings for one source with a short timeout and one retry."""
    return getattr(sb.settings(), name).model_copy(update={"timeout_s": 1.0, "max_retries": 1})


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


@pytest.mark.parametrize(("fault", "reason"), [
    ("http_500", "HTTP 500"), ("http_429", "HTTP 429"), ("malformed", ""), ("timeout", ""), ("refused", ""),
])
async def test_every_confluence_failure_is_a_clear_source_gap(checkout: Scenario, fault: str, reason: str) -> None:
    with Sandbox(with_faults(checkout, {"confluence": fault}), systems=["confluence"]) as sb:
        confluence = ConfluenceConnector(quick(sb, "confluence"))
        try:
            with pytest.raises(SourceUnavailable) as failure:
                await confluence.find_runbooks("OPS", ["checkout-api"], "checkout-api 5xx")
        finally:
            await confluence.aclose()
    assert failure.value.source == "confluence"
    assert reason in failure.value.reason
    assert failure.value.reason, "the gap says why"


@pytest.mark.parametrize(("fault", "reason"), [
    ("http_500", "HTTP 500"), ("http_429", "HTTP 429"), ("malformed", ""), ("timeout", ""), ("refused", ""),
])
async def test_every_jira_failure_is_a_clear_source_gap(checkout: Scenario, fault: str, reason: str) -> None:
    with Sandbox(with_faults(checkout, {"jira": fault}), systems=["jira"]) as sb:
        reader = JiraReader(quick(sb, "jira"))
        try:
            with pytest.raises(SourceUnavailable) as failure:
                await reader.open_issues("CHK", "checkout-api")
        finally:
            await reader.aclose()
    assert failure.value.source == "jira"
    assert reason in failure.value.reason


def _writes_through(client: Any) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("POST content", lambda: client.post("rest/api/content", data={"type": "page"})),
        ("PUT content", lambda: client.put("rest/api/content/98001", data={})),
        ("DELETE content", lambda: client.delete("rest/api/content/98001")),
        ("POST issue", lambda: client.post("rest/api/2/issue", data={"fields": {}})),
        ("PUT issue", lambda: client.put("rest/api/2/issue/CHK-1", data={})),
        ("DELETE issue", lambda: client.delete("rest/api/2/issue/CHK-1")),
        ("POST transition", lambda: client.post("rest/api/2/issue/CHK-1/transitions", data={})),
        ("POST comment", lambda: client.post("rest/api/2/issue/CHK-1/comment", data={"body": "x"})),
        ("GET outside", lambda: client.get("rest/api/2/myself")),
    ]


async def test_read_connectors_refuse_every_write_before_it_leaves(checkout: Scenario) -> None:
    with Sandbox(checkout, systems=["confluence", "jira"]) as sb:
        confluence = ConfluenceConnector(sb.settings().confluence)
        reader = JiraReader(sb.settings().jira)
        writer = JiraWriter(sb.settings().jira)
        try:
            for client in (confluence.client, reader.client):
                for _name, attempt in _writes_through(client):
                    with pytest.raises(WireRefused):
                        attempt()
            for name, attempt in _writes_through(writer.client):
                if name == "POST issue":
                    continue  # the writer's one allowed write: only reached behind an approval
                with pytest.raises(WireRefused):
                    attempt()
        finally:
            await confluence.aclose()
            await reader.aclose()
            await writer.aclose()
        assert sb.recorder.requests("confluence") == []
        assert sb.recorder.requests("jira") == []


def with_world(base: Scenario, **world: object) -> Scenario:
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    for key, value in world.items():  # lists are extended: the scenario's own items stay
        current = raw["world"].get(key)
        raw["world"][key] = [*current, *value] if isinstance(current, list) and isinstance(value, list) else value
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} with more world")


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
