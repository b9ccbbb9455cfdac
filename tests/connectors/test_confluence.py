"""Confluence, both sides of the wire: the sandbox's REST v1 fake and the runbook connector.

Every test drives the real `atlassian-python-api` client (requests) against
`Sandbox(scenario, systems=["confluence"])`; nothing below the library is mocked.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from requests.auth import HTTPBasicAuth

from bot.core.audit import MemoryAudit
from bot.core.config import ConfluenceSettings
from bot.core.errors import SourceUnavailable
from bot.core.models import EvidenceKind, Source, evidence_id
from bot.core.policy import default_policy
from bot.gather.tools import ToolRunner
from connectors.confluence import ConfluenceConnector
from sandbox.scenario import Scenario, parse_scenario
from sandbox.server import Sandbox

TOKEN = "sandbox-api-token"
USER = "incident-brief@example.com"
ALERT = "checkout-api 5xx rate above 5%"


def runbook(page_id: str, title: str, body: str, *, labels: list[str] | None = None, space: str = "OPS",
            rb_id: str | None = None) -> dict[str, Any]:
    return {"id": rb_id or f"rb-{page_id}", "page_id": page_id, "space": space, "title": title,
            "labels": labels or [], "updated_at": "2026-03-01T00:00:00Z", "body": body}


RB_5XX = runbook("98001", "checkout-api: elevated 5xx",
                 "1. Check the deploys of the last hour.\n2. Roll back: `deployctl rollback checkout-api`.",
                 labels=["checkout-api", "runbook"], rb_id="rb-5xx")
RB_LATENCY = runbook("98002", "checkout-api: high latency", "Look at the database pool first.",
                     labels=["checkout-api", "runbook"])
RB_TEXT_ONLY = runbook("98003", "Elevated 5xx rate: general guide", "Any service with a 5xx rate: check the LB.")
RB_OTHER = runbook("98004", "Payroll export", "Monthly export steps.", labels=["payroll"])
RB_OTHER_SPACE = runbook("98005", "checkout-api 5xx (old wiki)", "Outdated.", labels=["checkout-api"],
                         space="ARCHIVE")


def scenario(runbooks: list[dict[str, Any]], errors: dict[str, str] | None = None) -> Scenario:
    return parse_scenario({
        "version": 1, "id": "confluence-test", "title": "confluence test", "now": "2026-05-12T14:05:00Z",
        "alert": {"via": "cli", "title": ALERT, "service": "checkout-api", "triggered_at": "2026-05-12T14:01:00Z"},
        "catalog": [{"name": "checkout-api", "confluence": {"space": "OPS", "labels": ["checkout-api"]}}],
        "world": {"runbooks": runbooks, "faults": {"errors": errors or {}}},
        "expect": {"cause": {"kind": "unknown"}},
    })


def settings(sb: Sandbox, **overrides: Any) -> ConfluenceSettings:
    values: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 2, **overrides}
    return ConfluenceSettings.model_validate({**sb.settings().confluence.model_dump(), **values})


async def find(sb: Sandbox, space: str | None = "OPS", labels: list[str] | None = None, alert: str = ALERT,
               **overrides: Any) -> list[Any]:
    connector = ConfluenceConnector(settings(sb, **overrides))
    try:
        return await connector.find_runbooks(space, ["checkout-api"] if labels is None else labels, alert)
    finally:
        await connector.aclose()


# --- finding and reading runbooks ---------------------------------------------------------


async def test_the_labelled_runbook_is_found_read_as_text_and_cited_with_provenance() -> None:
    with Sandbox(scenario([RB_5XX, RB_OTHER]), systems=["confluence"]) as sb:
        found = await find(sb)
        recorded = sb.recorder.requests("confluence")

    [top] = found
    assert top.kind is EvidenceKind.RUNBOOK
    assert top.source is Source.CONFLUENCE
    assert top.id == evidence_id(EvidenceKind.RUNBOOK, "98001")
    assert top.ref == {"page_id": "98001"}
    assert top.title == "checkout-api: elevated 5xx"
    assert top.excerpt == ("1. Check the deploys of the last hour.\n"
                           "2. Roll back: `deployctl rollback checkout-api`.")
    assert top.data["page_id"] == "98001"
    assert top.data["space"] == "OPS"
    assert top.data["labels"] == ["checkout-api", "runbook"]
    assert top.data["score"] > 1.0  # labelled for the service and its title matches the alert
    assert top.link == "https://example.atlassian.net/wiki/pages/viewpage.action?pageId=98001"
    assert top.timestamp is not None
    assert top.timestamp.isoformat() == "2026-03-01T00:00:00+00:00"
    assert top.provenance.tool == "confluence.get_page"
    assert top.provenance.request.startswith("GET /wiki/rest/api/content/98001?expand=body.storage")

    searches = [r for r in recorded if r.tool == "confluence.search"]
    cqls = sorted(r.query["cql"][0] for r in searches)
    assert cqls[0] == 'type = page AND space = "OPS" AND (text ~ "checkout" OR text ~ "api" OR text ~ "5xx")'
    assert cqls[1] == 'type = page AND space = "OPS" AND label in ("checkout-api")'
    [page_read] = [r for r in recorded if r.tool == "confluence.get_page"]
    assert page_read.path == "/wiki/rest/api/content/98001"
    assert page_read.provenance == ("rb-5xx",)
    assert all(r.method == "GET" and r.status == 200 for r in recorded)
    assert all(r.headers["authorization"] == "<redacted>" for r in recorded)


async def test_runbooks_are_ranked_by_label_then_title_then_text_match_and_bounded() -> None:
    world = [RB_OTHER, RB_TEXT_ONLY, RB_LATENCY, RB_5XX, RB_OTHER_SPACE]
    with Sandbox(scenario(world), systems=["confluence"]) as sb:
        found = await find(sb)
        two = await find(sb, alert="checkout-api latency")
        reads = sb.recorder.requests("confluence", tool="confluence.get_page")
    # Labelled and the title matches the alert best; then labelled; then only the text matches.
    assert [e.ref["page_id"] for e in found] == ["98001", "98002", "98003"]
    assert found[0].data["score"] > found[1].data["score"] > found[2].data["score"]
    assert [e.ref["page_id"] for e in two][:1] == ["98002"]
    assert "98004" not in {r.path.rsplit("/", 1)[-1] for r in reads}, "unrelated pages are never read"
    assert "98005" not in {r.path.rsplit("/", 1)[-1] for r in reads}, "another space is out of scope"


async def test_without_labels_the_alert_text_finds_the_runbook() -> None:
    with Sandbox(scenario([RB_OTHER, RB_TEXT_ONLY]), systems=["confluence"]) as sb:
        found = await find(sb, labels=[])
        searches = sb.recorder.requests("confluence", tool="confluence.search")
    assert [e.ref["page_id"] for e in found] == ["98003"]
    assert len(searches) == 1, "no label search without labels"


async def test_nothing_to_search_for_sends_nothing() -> None:
    with Sandbox(scenario([RB_5XX]), systems=["confluence"]) as sb:
        assert await find(sb, labels=[], alert="the a 500 of") == []
        assert sb.recorder.requests() == []


async def test_alert_text_cannot_change_the_query() -> None:
    hostile = 'checkout" OR space = "ARCHIVE" OR text ~ "x'
    with Sandbox(scenario([RB_5XX, RB_OTHER_SPACE]), systems=["confluence"]) as sb:
        found = await find(sb, labels=[], alert=hostile)
        searches = sb.recorder.requests("confluence", tool="confluence.search")
    assert [r.status for r in searches] == [200]
    assert all(e.data["space"] == "OPS" for e in found), "quotes in the alert stay inside a string"


# --- pagination ---------------------------------------------------------------------------


def labelled_pages(count: int) -> list[dict[str, Any]]:
    return [runbook(str(99000 + n), f"checkout-api note {n}", f"<p>Step {n}.</p>", labels=["checkout-api"])
            for n in range(count)]


async def test_search_follows_next_links_until_the_last_page() -> None:
    with Sandbox(scenario(labelled_pages(60)), systems=["confluence"]) as sb:
        found = await find(sb, alert="", max_pages=5)
        searches = sb.recorder.requests("confluence", tool="confluence.search")
    assert [r.query["start"] for r in searches] == [["0"], ["25"], ["50"]]
    assert [r.query["limit"] for r in searches] == [["25"]] * 3
    assert len(found) == 3, "only the best few of the 60 candidates are read"


async def test_search_pagination_stops_at_max_pages() -> None:
    with Sandbox(scenario(labelled_pages(200)), systems=["confluence"]) as sb:
        await find(sb, alert="", max_pages=2)
        searches = sb.recorder.requests("confluence", tool="confluence.search")
    assert [r.query["start"] for r in searches] == [["0"], ["25"]]


# --- faults (every fault on every connector: test_faults.py) ------------------------------


async def test_a_failing_page_read_is_reported_as_that_tool() -> None:
    with (Sandbox(scenario([RB_5XX], {"confluence.get_page": "http_500"}), systems=["confluence"]) as sb,
          pytest.raises(SourceUnavailable) as err):
        await find(sb, max_retries=0)
    assert (err.value.tool, err.value.reason) == ("confluence.get_page", "HTTP 500 after 1 attempt")


async def test_a_wrong_token_is_a_clear_gap() -> None:
    with Sandbox(scenario([RB_5XX]), systems=["confluence"]) as sb, pytest.raises(SourceUnavailable) as err:
        await find(sb, labels=[], token="not-the-token")
    assert err.value.reason.startswith("HTTP 401")


async def test_a_bearer_token_without_a_user_name_is_accepted() -> None:
    with Sandbox(scenario([RB_5XX]), systems=["confluence"]) as sb:
        found = await find(sb, username="")
        [search] = sb.recorder.requests("confluence", tool="confluence.search")[:1]
    assert [e.ref["page_id"] for e in found] == ["98001"]
    assert search.status == 200


async def test_search_latency_injection_makes_confluence_a_gap_and_leaks_nothing(
        search_injection: Scenario) -> None:
    service = search_injection.service_entries()[0]
    with Sandbox(search_injection, systems=["confluence"]) as sb:
        connector = ConfluenceConnector(settings(sb, max_retries=1))
        runner = ToolRunner(policy=default_policy(), audit=MemoryAudit(), brief_key="t", timeout_s=10)
        try:
            outcome = await runner.read("confluence.search", Source.CONFLUENCE, lambda: connector.find_runbooks(
                service.confluence_space, service.confluence_labels, search_injection.alert.title))
        finally:
            await connector.aclose()
        recorded = sb.recorder.requests("confluence")
    assert outcome.evidence == []
    assert outcome.gap is not None
    assert (outcome.gap.source, outcome.gap.reason) == (Source.CONFLUENCE, "HTTP 500 after 2 attempts")
    shown = outcome.gap.model_dump_json()
    for planted in search_injection.expect.must_not_mention:
        assert planted not in shown
    assert {r.fault for r in recorded} == {"http_500"}
    assert sb.recorder.writes() == []


# --- the sandbox speaks Confluence ----------------------------------------------------------


def test_sandbox_wire_format_pagination_and_auth() -> None:
    with Sandbox(scenario([*labelled_pages(30), RB_5XX]), systems=["confluence"]) as sb:
        base = sb.url("confluence") + "/wiki"
        client = requests.Session()
        client.auth = HTTPBasicAuth(USER, TOKEN)
        cql = 'type = page AND label = "checkout-api"'
        first = client.get(base + "/rest/api/search", params={"cql": cql, "limit": "25"}).json()
        assert (first["start"], first["limit"], first["size"], first["totalSize"]) == (0, 25, 25, 31)
        assert first["_links"]["next"].startswith("/rest/api/search?")
        assert first["_links"]["base"] == base
        result = first["results"][0]
        assert {"content", "title", "excerpt", "url", "lastModified", "entityType"} <= set(result)
        assert {"id", "type", "title", "_links"} <= set(result["content"])
        second = client.get(base + first["_links"]["next"]).json()
        assert (second["start"], second["size"]) == (25, 6)
        assert "next" not in second["_links"]
        seen = [r["content"]["id"] for r in first["results"] + second["results"]]
        assert len(set(seen)) == 31

        page = client.get(base + "/rest/api/content/98001",
                          params={"expand": "body.storage,version,space,metadata.labels"}).json()
        assert page["body"]["storage"]["representation"] == "storage"
        assert page["body"]["storage"]["value"].startswith("<ol><li>Check the deploys")
        assert page["space"]["key"] == "OPS"
        assert [lb["name"] for lb in page["metadata"]["labels"]["results"]] == ["checkout-api", "runbook"]
        assert page["version"]["when"] == "2026-03-01T00:00:00.000Z"
        bare = client.get(base + "/rest/api/content/98001").json()
        assert "body" not in bare
        assert "version" not in bare

        assert client.get(base + "/rest/api/content/1").status_code == 404
        assert client.get(base + "/rest/api/search", params={"cql": "type = = page"}).status_code == 400
        assert client.get(base + "/rest/api/search", params={"cql": "colour = red"}).status_code == 400
        assert client.get(base + "/rest/api/search").status_code == 400

        bearer = requests.get(base + "/rest/api/search", params={"cql": cql},
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert bearer.status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            denied = requests.get(base + "/rest/api/search", params={"cql": cql}, headers=headers, timeout=5)
            assert denied.status_code == 401
        assert requests.get(base + "/rest/api/search", params={"cql": cql}, auth=(USER, "wrong"),
                            timeout=5).status_code == 401
