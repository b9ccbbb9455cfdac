"""Confluence's answers (tests/fixtures/atlassian): Cloud search pages and page bodies and a Server
page, replayed over HTTP through atlassian-python-api and the connector. Jira's are in
test_vendor_jira.py."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.config import ConfluenceSettings
from bot.core.errors import SourceUnavailable
from bot.core.models import EvidenceKind, evidence_id
from connectors.confluence import NO_BODY, PAGE_EXPAND, ConfluenceConnector
from tests.helpers.replay import Canned, fixture, replaying

SEARCH = fixture("atlassian", "confluence_cloud_search.json")
RESEARCH = fixture("atlassian", "confluence_page_research.json")
# A Confluence Server answer to `GET /rest/api/content/{id}` (Kelkoo's, 2021): no `/wiki` context,
# `/display/<space>/<title>` links, the body in the `editor` representation its client asked for.
SERVER_PAGE = fixture("atlassian", "confluence_server_page_kelkoo.json")
SERVER_WEB = "http://confluence.corp.kelkoo.net:8090"
# Confluence Cloud's `_links.next` on a search page: context-relative, an opaque cursor, and a
# `start` Cloud ignores (the shape Cloud documents and sends; the cursor value is made up).
CURSOR = "_f_MjU=_sa_WyJcdDk0NTAyOTEyMSJd"
NEXT = f"/rest/api/search?next=true&cursor={CURSOR}&limit=25&start=25&cql=type+%3D+page"


async def runbooks(answers: list[Canned], *, labels: list[str], text: str) -> tuple[list, Any]:
    async with replaying(answers) as server:
        conn = ConfluenceConnector(ConfluenceSettings(base_url=server.base_url + "/wiki",
                                                      web_url="https://example.atlassian.net/wiki",
                                                      username="bot@example.com", token="t", max_retries=0))
        try:
            found = await conn.find_runbooks("TEAM", labels, text)
        finally:
            await conn.aclose()
    return found, server


async def test_a_cloud_search_and_page_body_become_a_runbook() -> None:
    answers = [Canned("GET", "/wiki/rest/api/search", SEARCH),
               Canned("GET", "/wiki/rest/api/content/123456789", RESEARCH)]
    [page], server = await runbooks(answers, labels=["meetings"], text="Team progress meeting")
    assert page.id == evidence_id(EvidenceKind.RUNBOOK, "123456789")
    assert page.title == "Sample Research Paper Title"
    assert page.excerpt == "[Date]\n\nResult: Sample Result\n\nReviews:\n\nSample content with various formatting"
    assert page.data["page_id"] == "123456789"
    assert page.link == "https://example.atlassian.net/wiki/spaces/PROJ/pages/123456789/Sample+Research+Paper+Title"
    assert [r.path for r in server.received].count("/wiki/rest/api/search") == 2  # label and text searches


async def test_the_cloud_page_body_renders_mentions_dates_and_drops_macros() -> None:
    page_body = fixture("atlassian", "confluence_cloud_page.json")
    search = copy.deepcopy(SEARCH)
    search["results"][0]["content"]["id"] = page_body["id"]
    answers = [Canned("GET", "/wiki/rest/api/search", search),
               Canned("GET", f"/wiki/rest/api/content/{page_body['id']}", page_body)]
    [page], _ = await runbooks(answers, labels=[], text="meeting notes")
    assert page.title == "Example Meeting Notes"
    assert page.timestamp == datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    assert page.link == "https://example.atlassian.net/wiki/spaces/PROJ/pages/987654321/Example+Meeting+Notes"
    assert page.excerpt == "Date\n\n2024-01-01\n\nParticipants\n\n- @user123\n\nGoals\n\n- Example goal"
    assert page.data["space"] == "PROJ"


async def test_cloud_search_pages_are_followed_by_cursor_not_start() -> None:
    first = copy.deepcopy(SEARCH)
    first["_links"]["next"] = NEXT
    second = copy.deepcopy(SEARCH)
    second["results"][0]["content"]["id"] = "987654321"
    answers = [Canned("GET", "/wiki/rest/api/search", second, query={"cursor": CURSOR}),
               Canned("GET", "/wiki/rest/api/search", first),
               Canned("GET", "/wiki/rest/api/content/123456789", RESEARCH),
               Canned("GET", "/wiki/rest/api/content/987654321", fixture("atlassian", "confluence_page_meeting.json"))]
    found, server = await runbooks(answers, labels=[], text="meeting")
    searches = [r for r in server.received if r.path == "/wiki/rest/api/search"]
    assert [r.query.get("cursor") for r in searches] == [None, [CURSOR]]
    assert searches[1].query["next"] == ["true"]
    assert sorted(p.data["page_id"] for p in found) == ["123456789", "987654321"]


async def test_server_search_pages_are_followed_by_start() -> None:
    # Server/Data Center pages by offset: its `_links.next` carries `start` and no cursor, in the
    # form Atlassian documents for the index-based links (its Cloud change notice quotes
    # "/rest/api/search?limit=25&start=50&cql=space=XYZ&status=draft"). No Server search answer
    # with a known licence could be found to vendor: the captured Cloud page stands in, with a
    # Server-form link; the cql is what the connector sent, as Server echoes it.
    first = copy.deepcopy(SEARCH)
    second = copy.deepcopy(SEARCH)
    second["results"][0]["content"]["id"] = "987654321"
    answers = [Canned("GET", "/wiki/rest/api/search", second, query={"start": "25"}),
               Canned("GET", "/wiki/rest/api/search", first),
               Canned("GET", "/wiki/rest/api/content/123456789", RESEARCH),
               Canned("GET", "/wiki/rest/api/content/987654321", fixture("atlassian", "confluence_page_meeting.json"))]
    first["_links"]["next"] = "/rest/api/search?limit=25&start=25&cql=type+%3D+page+AND+%28text+~+%22meeting%22%29"
    found, server = await runbooks(answers, labels=[], text="meeting")
    searches = [r for r in server.received if r.path == "/wiki/rest/api/search"]
    assert [r.query.get("start") for r in searches] == [["0"], ["25"]]
    assert all("cursor" not in r.query for r in searches)
    assert searches[1].query["cql"] == ['type = page AND (text ~ "meeting")']
    assert sorted(p.data["page_id"] for p in found) == ["123456789", "987654321"]


async def test_a_next_link_to_another_host_is_not_followed() -> None:
    first = copy.deepcopy(SEARCH)
    first["_links"]["next"] = "https://evil.example.com/wiki" + NEXT
    async with replaying([Canned("GET", "/wiki/rest/api/search", first)]) as server:
        conn = ConfluenceConnector(ConfluenceSettings(base_url=server.base_url + "/wiki", token="t", max_retries=0))
        try:
            with pytest.raises(SourceUnavailable, match="another host"):
                await conn.find_runbooks("TEAM", [], "meeting")
        finally:
            await conn.aclose()
    assert all(r.path == "/wiki/rest/api/search" for r in server.received)


async def server_runbooks(page_body: dict[str, Any]) -> tuple[list, Any]:
    # Server serves the API at the site's root (no `/wiki`); the captured Cloud search page lists
    # the Server page's id, the rest of the search is as recorded.
    search = copy.deepcopy(SEARCH)
    search["results"][0]["content"]["id"] = page_body["id"]
    answers = [Canned("GET", "/rest/api/search", search),
               Canned("GET", f"/rest/api/content/{page_body['id']}", page_body)]
    async with replaying(answers) as server:
        conn = ConfluenceConnector(ConfluenceSettings(base_url=server.base_url, web_url=SERVER_WEB,
                                                      username="cop-doc-publisher", token="t", max_retries=0))
        try:
            found = await conn.find_runbooks("EN", [], "REST API with markdown")
        finally:
            await conn.aclose()
    return found, server


async def test_a_recorded_server_page_is_read_and_its_missing_body_is_said() -> None:
    [page], server = await server_runbooks(SERVER_PAGE)
    [fetch] = [r for r in server.received if r.path.startswith("/rest/api/content/")]
    assert (fetch.path, fetch.query["expand"]) == ("/rest/api/content/130913238", [PAGE_EXPAND])
    assert page.id == evidence_id(EvidenceKind.RUNBOOK, "130913238")
    assert page.title == "TEST REST API WITH MD"
    assert page.timestamp == datetime(2021, 5, 5, 7, 53, 12, 183000, tzinfo=UTC)  # version.when
    assert page.link == f"{SERVER_WEB}/display/~reinharg/TEST+REST+API+WITH+MD"  # Server's webui form
    # The answer holds `body.editor` only (that client's `expand`): the text is missing, and the
    # runbook says so rather than calling the page empty.
    assert "storage" not in SERVER_PAGE["body"]
    assert page.excerpt == NO_BODY
    assert page.data == {"page_id": "130913238", "space": "EN", "labels": [], "score": page.data["score"],
                         "text": ""}
    assert page.provenance.request == f"GET /rest/api/content/130913238?expand={PAGE_EXPAND}"


async def test_a_server_page_whose_storage_body_is_empty_reads_as_empty() -> None:
    # The same recorded answer with the storage body Confluence sends for a page with no content.
    empty = copy.deepcopy(SERVER_PAGE)
    empty["body"]["storage"] = {"value": "", "representation": "storage"}
    [page], _ = await server_runbooks(empty)
    assert page.excerpt == "(empty page)"
