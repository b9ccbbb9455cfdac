"""Confluence runbooks as evidence, read-only at the wire.

Client: `atlassian.Confluence(url=<site>/wiki, cloud=False)`. For an ``*.atlassian.net`` host
the library would otherwise pick its Cloud class, which has no ``get_page_by_id`` and builds a
wrong path for ``cql()``; the Server class against ``/wiki`` sends the v1 paths Cloud and
Server/DC both serve: ``GET /wiki/rest/api/search`` and ``GET /wiki/rest/api/content/{id}``.
Those two GETs are the whole allowlist. The library is blocking (requests), so every call runs
in a worker thread.

How runbooks are found: one CQL search by the service's space and labels (pages the team filed
for this service), one text search on the alert title's words (any of them), both bounded
pages; candidates are ranked by label hit, title overlap and text-search rank; the top few
bodies are fetched and converted from storage format to plain text.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from math import ceil
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from atlassian import Confluence
from atlassian.errors import ApiError

from bot.core.config import ConfluenceSettings
from bot.core.errors import SourceUnavailable, WireRefused
from bot.core.models import Evidence, EvidenceKind, Provenance, ReferenceCheck, Source, evidence_id
from connectors._http import Allowlist, base_path
from connectors._requests_guard import call_blocking, guard_session
from connectors._time import iso_time
from connectors.storage_format import storage_to_text

SOURCE = "confluence"
TOOL = "confluence.search"
PAGE_TOOL = "confluence.get_page"
RULES = (("GET", "/rest/api/search"), ("GET", "/rest/api/content/{page_id}"))
PAGE_EXPAND = "body.storage,version,space,metadata.labels"
SEARCH_PAGE_SIZE = 25
MAX_QUERY_WORDS = 8
TEXT_MAX_CHARS = 4000
NO_BODY = "(Confluence's answer carried no storage-format body: the page text could not be read)"
_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
    "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this",
    "to", "was", "will", "with", "above", "below", "over", "under", "than", "rate", "prod", "production",
})


class _ConfluenceAllowlist(Allowlist):
    """The two reads, where a content id must be a number: ``content/search``, ``content/blueprint``
    and the like fit the ``{page_id}`` pattern but are not what this connector reads."""

    def allows(self, method: str, path: str) -> bool:
        if not super().allows(method, path):
            return False
        rest = path[len(self.base_path):]
        return not rest.startswith("/rest/api/content/") or rest.rsplit("/", 1)[-1].isdigit()


@dataclass
class _Candidate:
    page_id: str
    title: str
    label_hit: bool = False
    text_rank: int | None = None

    def score(self, alert_words: list[str]) -> float:
        title_words = set(_words(self.title))
        overlap = sum(w in title_words for w in alert_words) / len(alert_words) if alert_words else 0.0
        text = 0.5 / (1 + self.text_rank) if self.text_rank is not None else 0.0
        return round((1.0 if self.label_hit else 0.0) + overlap + text, 3)


class ConfluenceConnector:
    """Finds and reads runbook pages. Safe to share across briefs; close with `aclose`."""

    def __init__(self, settings: ConfluenceSettings) -> None:
        self.settings = settings
        self.base_path = base_path(settings.base_url)
        self.allowlist = _ConfluenceAllowlist(SOURCE, RULES, base_path=self.base_path)
        auth: dict[str, Any] = (
            {"username": settings.username, "password": settings.token.get_secret_value()}
            if settings.username else {"token": settings.token.get_secret_value()}
        )
        self.client = Confluence(url=settings.base_url.rstrip("/"), cloud=False, retry_with_header=False,
                                 backoff_and_retry=False, timeout=max(1, ceil(settings.timeout_s)), **auth)
        self.adapter = guard_session(self.client.session, self.allowlist, base_url=settings.base_url,
                                     timeout_s=settings.timeout_s, max_retries=settings.max_retries)

    async def find_runbooks(self, space: str | None, labels: list[str], alert_text: str,
                            limit: int = 3) -> list[Evidence]:
        """The `limit` best-matching runbook pages for this service and alert, best first."""
        alert_words = _query_words(alert_text)
        scope = [f"space = {_quote(space)}"] if space else []
        label_cql = text_cql = None
        if labels:
            label_cql = " AND ".join(["type = page", *scope, f"label in ({', '.join(map(_quote, labels))})"])
        if alert_words:
            any_word = " OR ".join(f"text ~ {_quote(w)}" for w in alert_words)
            text_cql = " AND ".join(["type = page", *scope, f"({any_word})"])
        # Both searches, then the chosen pages, run concurrently: the source costs two round trips.
        by_label, by_text = await asyncio.gather(self._search(label_cql), self._search(text_cql))
        candidates: dict[str, _Candidate] = {}
        for result in by_label:
            self._candidate(candidates, result).label_hit = True
        for rank, result in enumerate(by_text):
            found = self._candidate(candidates, result)
            found.text_rank = rank if found.text_rank is None else found.text_rank
        ranked = sorted(candidates.values(), key=lambda c: (-c.score(alert_words), c.page_id))[: max(limit, 0)]
        pages = await asyncio.gather(*(call_blocking(SOURCE, PAGE_TOOL, self._get_page, c.page_id) for c in ranked))
        return [self._evidence(page, candidate, candidate.score(alert_words), space)
                for page, candidate in zip(pages, ranked, strict=True) if page is not None]

    async def space_check(self, space: str) -> ReferenceCheck:
        """For ``doctor`` (tool ``confluence.search``): whether a search of the space finds pages,
        one result at most. No answer proves a space exists: Confluence finds nothing in a space
        the token cannot see, and Cloud nothing in one that does not exist, so no pages is
        `empty`. Only Confluence refusing the search is `missing` (Data Center answers 400
        "parameters should not be empty" for a space that does not exist; older servers 500,
        which reads as could-not-check: it cannot be told from an outage)."""
        cql = f"type = page AND space = {_quote(space)}"
        try:
            page = await call_blocking(SOURCE, TOOL, self.client.cql, cql, start=0, limit=1)
        except WireRefused:
            raise
        except SourceUnavailable as exc:
            if exc.reason.startswith("HTTP 400"):  # a 404 would be the search itself missing, not the space
                return ReferenceCheck(state="missing", detail=exc.reason)
            raise
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise SourceUnavailable(SOURCE, "malformed JSON in search response", TOOL)
        if not page["results"]:
            return ReferenceCheck(state="empty", detail="no pages found")
        total = page.get("totalSize")
        return ReferenceCheck(state="found", detail=f"{total} page(s)" if isinstance(total, int) else "pages found")

    async def write_probe(self) -> str:
        """The guard's refusal of a write (``POST .../rest/api/content``), or "" if it left the
        process. The probe's body is empty, so even a broken guard sends nothing a server accepts."""
        try:
            await asyncio.to_thread(self.client.post, "rest/api/content", data={})
        except WireRefused as refused:
            return str(refused)
        except Exception:  # it left the process: whatever came back, the guard failed
            return ""
        return ""

    async def aclose(self) -> None:
        self.client.close()

    # -- wire -------------------------------------------------------------------------------------
    async def _search(self, cql: str | None) -> list[dict[str, Any]]:
        """Every result of a CQL query, for at most `max_pages` pages (none for no query).

        Pages are followed through ``_links.next``, as Confluence itself links them: Cloud pages
        by an opaque ``cursor`` and ignores ``start`` (asking for ``start=25`` again returns the
        first page), Server/Data Center puts ``start`` in the same link. A next link is followed
        only to the search path on our own site, and a link seen before ends the walk.
        """
        results: list[dict[str, Any]] = []
        if cql is None:
            return results
        page = await call_blocking(SOURCE, TOOL, self.client.cql, cql, start=0, limit=SEARCH_PAGE_SIZE)
        seen: set[str] = set()
        pages = max(self.settings.max_pages, 1)
        for number in range(1, pages + 1):
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise SourceUnavailable(SOURCE, "malformed JSON in search response", TOOL)
            batch = [r for r in page["results"] if isinstance(r, dict)]
            results.extend(batch)
            nxt = _dig(page, "_links", "next")
            if number == pages or not batch or not isinstance(nxt, str) or nxt in seen:
                break
            seen.add(nxt)
            params = self._next_params(nxt)
            page = await call_blocking(SOURCE, TOOL, self.client.get, "rest/api/search", params=params)
        return results

    def _next_params(self, link: str) -> dict[str, str]:
        """The query of a search page's ``_links.next``; refused unless it is our search path
        (``/rest/api/search``, relative to the site's context, or an absolute link to our host)."""
        parts = urlsplit(link)
        ours = urlsplit(self.settings.base_url)
        if parts.netloc and (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc):
            raise SourceUnavailable(SOURCE, "search pagination link points to another host", TOOL)
        if not parts.path.endswith("/rest/api/search"):
            raise SourceUnavailable(SOURCE, f"unexpected search pagination link {parts.path[:80]!r}", TOOL)
        return dict(parse_qsl(parts.query, keep_blank_values=True))

    def _get_page(self, page_id: str) -> dict[str, Any] | None:
        """The page with body and metadata; None when it vanished between search and fetch."""
        try:
            page = self.client.get_page_by_id(page_id, expand=PAGE_EXPAND)
        except ApiError as exc:
            response = getattr(exc.reason, "response", None)
            if getattr(response, "status_code", None) == 404:
                return None
            raise
        if not isinstance(page, dict) or not isinstance(page.get("id"), str | int):
            raise SourceUnavailable(SOURCE, "malformed JSON in page response", PAGE_TOOL)
        return page

    # -- shaping ----------------------------------------------------------------------------------
    @staticmethod
    def _candidate(candidates: dict[str, _Candidate], result: dict[str, Any]) -> _Candidate:
        raw_content = result.get("content")
        content: dict[str, Any] = raw_content if isinstance(raw_content, dict) else {}
        page_id = str(content.get("id", ""))
        if not page_id.isdigit() or content.get("type", "page") != "page":
            return _Candidate(page_id="", title="")  # not a page we can fetch: counted nowhere
        title = str(content.get("title") or result.get("title") or "")
        return candidates.setdefault(page_id, _Candidate(page_id=page_id, title=title))

    def _evidence(self, page: dict[str, Any], candidate: _Candidate, score: float,
                  space: str | None) -> Evidence:
        page_id = str(page["id"])
        storage = _dig(page, "body", "storage", "value")
        text = storage_to_text(storage if isinstance(storage, str) else "", max_chars=TEXT_MAX_CHARS)
        # No storage body at all is not an empty page: the reader is told the text is missing.
        excerpt = text or ("(empty page)" if isinstance(storage, str) else NO_BODY)
        labels_raw = _dig(page, "metadata", "labels", "results")
        labels = [str(lb["name"]) for lb in labels_raw if isinstance(lb, dict) and lb.get("name")] \
            if isinstance(labels_raw, list) else []
        space_key = _dig(page, "space", "key")
        title = str(page.get("title") or candidate.title or f"Confluence page {page_id}")
        return Evidence(
            id=evidence_id(EvidenceKind.RUNBOOK, page_id),
            kind=EvidenceKind.RUNBOOK,
            source=Source.CONFLUENCE,
            title=title,
            excerpt=excerpt,
            timestamp=iso_time(_dig(page, "version", "when")),
            link=self._link(page, page_id),
            provenance=Provenance(
                system=Source.CONFLUENCE, tool=PAGE_TOOL,
                request=f"GET {self.base_path}/rest/api/content/{page_id}?expand={PAGE_EXPAND}",
                fetched_at=datetime.now(UTC),
            ),
            ref={"page_id": page_id},
            data={"page_id": page_id, "space": space_key if isinstance(space_key, str) else space,
                  "labels": labels, "score": score, "text": text},
        )

    def _link(self, page: dict[str, Any], page_id: str) -> str:
        # Only a relative webui path is trusted: the page's own links must not send a reader elsewhere.
        webui = _dig(page, "_links", "webui")
        if isinstance(webui, str) and webui.startswith("/") and not webui.startswith("//"):
            return self.settings.link_base + webui
        return f"{self.settings.link_base}/pages/viewpage.action?pageId={page_id}"


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _query_words(alert_text: str) -> list[str]:
    """Distinct, meaningful words of the alert title (untrusted text): no stop words, no numbers
    alone, at most `MAX_QUERY_WORDS`."""
    seen: dict[str, None] = {}
    for word in _words(alert_text):
        if len(word) > 1 and word not in _STOP_WORDS and not word.isdigit():
            seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_WORDS]


def _quote(value: str) -> str:
    """A CQL string literal; the value is data, never syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


