"""Fake Confluence: the Server/Data Center REST API v1 under the context path ``/wiki``.

Why Server-style under ``/wiki``: `atlassian-python-api` 5.x picks its Cloud class for any
``*.atlassian.net`` host, and that class has no ``get_page_by_id`` and builds a wrong path for
``cql()``. The connector therefore builds ``Confluence(url=<site>/wiki, cloud=False)``, which
against Confluence Cloud and Server/DC alike sends ``GET /wiki/rest/api/search`` and ``GET
/wiki/rest/api/content/{id}`` (Cloud still serves these v1 paths under ``/wiki``). This fake
serves exactly that shape, so the same connector code runs against it and against a real site.

Routes (tool names in brackets):
- ``GET /wiki/rest/api/search?cql=&limit=&cursor=`` [confluence.search]: Cloud's cursor paging
  (``_links.next`` carries an opaque ``cursor``; ``start`` is ignored, as Cloud ignores it); a CQL subset
  (``type``, ``space``/``space.key``, ``label``, ``id``, ``title ~``, ``text ~``, ``siteSearch ~``;
  ``= != ~ !~ IN NOT IN``; ``AND OR NOT`` and parentheses; ``ORDER BY`` accepted and ignored).
  ``~`` needs every word of its value (stop words dropped, ``word*`` is a prefix), so a client
  that wants "any of these words" ORs single-word clauses; results are ranked by how many query
  words a page matches (title 3, label 2, body 1). Bad CQL -> 400.
- ``GET /wiki/rest/api/content/{id}?expand=`` [confluence.get_page]: the page, its body in
  storage format (rendered from the scenario's plain-text runbook), version, space and labels
  as requested by ``expand``.

Every route needs HTTP Basic auth whose password is the sandbox API token, or that token as a
Bearer token. Provenance is the
runbook ids behind each answer. The query parser is shared with the fake Jira (JQL and CQL
have the same grammar).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from sandbox.core import Reply, SandboxContext, SandboxRequest, SystemApp
from sandbox.scenario import Runbook

CONTEXT_PATH = "/wiki"
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
STOP_WORDS = frozenset({  # Lucene's English stop words
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
    "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this",
    "to", "was", "will", "with",
})


# -- the query language shared by CQL and JQL -----------------------------------------------------

class QueryError(ValueError):
    """CQL/JQL that this fake (like the real thing) cannot parse; answered with a 400."""


@dataclass(frozen=True)
class Clause:
    field: str  # lower-cased
    op: str  # "=", "!=", "~", "!~", "in", "not in"
    values: tuple[str, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Clause | BoolOp | Not

_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|!~|=|~)"""
                    r"""|(?P<punct>[(),])|(?P<word>[^\s"'(),=!~<>]+))""")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        found = _TOKEN.match(text, pos)
        if found is None or found.lastgroup is None:
            column = len(text) - len(text[pos:].lstrip())
            raise QueryError(f"unexpected {text[column]!r} at position {column}")
        value = found.group(found.lastgroup)
        if found.lastgroup == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((found.lastgroup, value))
        pos = found.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        at = self.i + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def keyword(self, word: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise QueryError("unexpected end of query")
        self.i += 1
        return tok

    def parse(self) -> Node | None:
        node = None if not self.tokens or self.keyword("order") else self.or_expr()
        extra = self.peek()
        if extra is not None and not (self.keyword("order") and self.keyword("by", 1)):
            raise QueryError(f"unexpected {extra[1]!r}")
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.keyword("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self.keyword("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def not_expr(self) -> Node:
        if self.keyword("not"):
            self.take()
            return Not(self.not_expr())
        if self.peek() == ("punct", "("):
            self.take()
            node = self.or_expr()
            if self.take() != ("punct", ")"):
                raise QueryError("expected ')'")
            return node
        return self.clause()

    def clause(self) -> Clause:
        kind, field = self.take()
        if kind != "word":
            raise QueryError(f"expected a field name, got {field!r}")
        if self.keyword("not") and self.keyword("in", 1):
            self.i += 2
            return Clause(field.lower(), "not in", self.value_list())
        if self.keyword("in"):
            self.take()
            return Clause(field.lower(), "in", self.value_list())
        kind, op = self.take()
        if kind != "op":
            raise QueryError(f"expected an operator after {field!r}, got {op!r}")
        return Clause(field.lower(), op, (self.value(),))

    def value(self) -> str:
        kind, value = self.take()
        if kind not in ("str", "word"):
            raise QueryError(f"expected a value, got {value!r}")
        return value

    def value_list(self) -> tuple[str, ...]:
        if self.take() != ("punct", "("):
            raise QueryError("expected '(' after IN")
        values = [self.value()]
        while self.peek() == ("punct", ","):
            self.take()
            values.append(self.value())
        if self.take() != ("punct", ")"):
            raise QueryError("expected ')' to close the IN list")
        return tuple(values)


def parse_query(text: str) -> Node | None:
    """Parse CQL/JQL into a tree; ``None`` for an empty query (or one that is only ORDER BY)."""
    return _Parser(text).parse()


def evaluate(node: Node | None, match: Callable[[Clause], bool]) -> bool:
    if node is None:
        return True
    if isinstance(node, Clause):
        return match(node)
    if isinstance(node, Not):
        return not evaluate(node.part, match)
    results = (evaluate(part, match) for part in node.parts)
    return all(results) if node.op == "and" else any(results)


def all_clauses(node: Node | None) -> list[Clause]:
    if node is None:
        return []
    if isinstance(node, Clause):
        return [node]
    if isinstance(node, Not):
        return all_clauses(node.part)
    return [c for part in node.parts for c in all_clauses(part)]


def positive_clauses(node: Node | None, negated: bool = False) -> list[Clause]:
    """Clauses that count towards relevance (those not under a NOT)."""
    if node is None:
        return []
    if isinstance(node, Clause):
        return [] if negated else [node]
    if isinstance(node, Not):
        return positive_clauses(node.part, not negated)
    return [c for part in node.parts for c in positive_clauses(part, negated)]


def words(text: str) -> list[str]:
    """Lower-cased index terms, as a standard analyzer splits them."""
    return re.findall(r"[a-z0-9]+", text.lower())


def all_terms_hit(value: str, indexed: set[str]) -> bool:
    """``field ~ "a b"``: every term must occur (in any order); a value of only stop words
    matches nothing."""
    terms = query_terms(value)
    return bool(terms) and term_hits(terms, indexed) == len(terms)


def query_terms(value: str) -> list[str]:
    """Terms of a ``~`` value: words without stop words; a trailing ``*`` makes a prefix."""
    terms = re.findall(r"[a-z0-9]+\*?", value.lower())
    return [t for t in terms if t.rstrip("*") not in STOP_WORDS]


def term_hits(terms: list[str], indexed: set[str]) -> int:
    hits = 0
    for term in terms:
        if term.endswith("*"):
            hits += any(word.startswith(term[:-1]) for word in indexed)
        else:
            hits += term in indexed
    return hits


def basic_auth(ctx: SandboxContext,
               denial: dict[str, Any] | None = None) -> Callable[[SandboxRequest], Reply | None]:
    """Atlassian auth: HTTP Basic with any user name and the sandbox API token as the password
    (Cloud API tokens), or ``Bearer <token>`` (Server/Data Center personal access tokens);
    `denial` is the system's own 401 body."""

    def check(req: SandboxRequest) -> Reply | None:
        header = req.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        token = ctx.secrets["api_token"]
        if scheme.lower() == "bearer" and hmac.compare_digest(credential.encode(), token.encode()):
            return None
        try:
            user, _, password = base64.b64decode(credential, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() == "basic" and user and hmac.compare_digest(password.encode(), token.encode()):
            return None
        body = denial or {"statusCode": 401, "reason": "Unauthorized",
                          "message": "Basic authentication with a valid API token is required"}
        return Reply(body, status=401, headers={"WWW-Authenticate": 'Basic realm="sandbox"',
                                                "Content-Type": "application/json;charset=UTF-8"})

    return check


# -- Confluence -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Page:
    runbook: Runbook
    title_words: frozenset[str]
    body_words: frozenset[str]

    @property
    def provenance(self) -> str:
        return self.runbook.id or f"page:{self.runbook.page_id}"

    def score(self, terms: list[str]) -> int:
        labels = {w for label in self.runbook.labels for w in words(label)}
        return (3 * term_hits(terms, set(self.title_words)) + 2 * term_hits(terms, labels)
                + term_hits(terms, set(self.body_words)))


def build(ctx: SandboxContext) -> SystemApp:
    app = SystemApp("confluence", ctx, auth=basic_auth(ctx))
    pages = [_Page(rb, frozenset(words(rb.title)), frozenset(words(rb.body)))
             for rb in ctx.scenario.world.runbooks]

    def base_url() -> str:
        return ctx.urls.get("confluence", "") + CONTEXT_PATH

    @app.route("GET", CONTEXT_PATH + "/rest/api/search", tool="confluence.search")
    async def search(req: SandboxRequest) -> Reply:
        cql = req.q("cql")
        if not cql:
            return _bad_request("cql parameter is required")
        try:
            # Like Confluence Cloud: pages after the first are named by the opaque cursor of the
            # previous page's `_links.next`; `start` is echoed back but ignored.
            start = _cursor_offset(req.q("cursor"))
            limit = min(_int_param(req, "limit", DEFAULT_LIMIT), MAX_LIMIT)
            node = parse_query(cql)
        except QueryError as exc:
            return _bad_request(f"Could not parse cql : {cql} ({exc})")
        if node is None:
            return _bad_request(f"Could not parse cql : {cql} (empty query)")
        try:
            for clause in all_clauses(node):  # bad fields are a 400 even when nothing would match
                _matches(_PROBE, clause)
            hits = [page for page in pages if evaluate(node, partial(_matches, page))]
        except QueryError as exc:
            return _bad_request(str(exc))
        terms = [t for c in positive_clauses(node) if c.op == "~" for v in c.values for t in query_terms(v)]
        hits.sort(key=lambda p: (-p.score(terms), p.runbook.page_id))
        window = hits[start:start + limit]
        links: dict[str, str] = {"base": base_url(), "context": CONTEXT_PATH,
                                 "self": base_url() + "/rest/api/search?" + urlencode({"cql": cql})}
        if start + limit < len(hits):
            links["next"] = _search_path(cql, limit, start + limit)
        if start > 0:
            links["prev"] = _search_path(cql, limit, max(start - limit, 0), prev=True)
        return Reply({
            "results": [_search_result(p.runbook, base_url(), ctx.now) for p in window],
            "start": start, "limit": limit, "size": len(window), "totalSize": len(hits),
            "cqlQuery": cql, "searchDuration": 7, "_links": links,
        }, provenance=[p.provenance for p in window])

    @app.route("GET", CONTEXT_PATH + "/rest/api/content/{page_id}", tool="confluence.get_page")
    async def get_page(req: SandboxRequest) -> Reply:
        page_id = req.path_params["page_id"]
        page = next((p for p in pages if p.runbook.page_id == page_id), None)
        if page is None:
            message = f"No content found with id: ContentId{{id={page_id}}}"
            return Reply({"statusCode": 404, "message": message, "reason": "Not Found"}, status=404)
        expand = {part.strip() for part in (req.q("expand") or "").split(",") if part.strip()}
        return Reply(_content(page.runbook, base_url(), ctx.now, expand), provenance=[page.provenance])

    return app


_PROBE = _Page(Runbook(page_id="0", title="", body=""), frozenset(), frozenset())


def _matches(page: _Page, clause: Clause) -> bool:
    rb = page.runbook
    field, op = clause.field, clause.op
    if field in ("text", "sitesearch", "title"):
        if op not in ("~", "!~"):
            raise QueryError(f"operator {op!r} is not supported for field {field!r}; use ~")
        indexed = set(page.title_words)
        if field != "title":
            indexed |= page.body_words | {w for label in rb.labels for w in words(label)}
        found = any(all_terms_hit(v, indexed) for v in clause.values)
        return found if op == "~" else not found
    actual: set[str]
    if field == "type":
        actual = {"page"}
    elif field in ("space", "space.key"):
        actual = {(rb.space or "").lower()}
    elif field == "label":
        actual = {label.lower() for label in rb.labels}
    elif field in ("id", "content"):
        actual = {rb.page_id}
    else:
        raise QueryError(f"field {clause.field!r} is not supported by this Confluence")
    if op in ("~", "!~"):
        raise QueryError(f"operator {op!r} is not supported for field {field!r}")
    hit = bool(actual & {v.lower() for v in clause.values})
    return hit if op in ("=", "in") else not hit


def _int_param(req: SandboxRequest, name: str, default: int) -> int:
    raw = req.q(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise QueryError(f"{name} must be a non-negative integer")
    return int(raw)


def _search_path(cql: str, limit: int, start: int, *, prev: bool = False) -> str:
    """A Cloud-style page link, relative to the context path: ``next=true&cursor=…`` (``prev``
    for the page before), with ``start`` and ``limit`` that Cloud writes in and ignores."""
    cursor = "_f_" + base64.urlsafe_b64encode(f"{start}".encode()).decode() + "_sa_sandbox"
    return "/rest/api/search?" + urlencode({"next" if not prev else "prev": "true", "cursor": cursor,
                                            "limit": limit, "start": start, "cql": cql})


def _cursor_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    match = re.fullmatch(r"_f_([A-Za-z0-9_=-]+)_sa_sandbox", cursor)
    try:
        offset = base64.urlsafe_b64decode(match.group(1)).decode() if match else ""
    except ValueError:
        offset = ""
    if not offset.isdigit():
        raise QueryError("cursor is not one this server issued")
    return int(offset)


def _bad_request(message: str) -> Reply:
    return Reply({"statusCode": 400, "message": message, "reason": "Bad Request"}, status=400)


def _when(dt: datetime | None, now: datetime) -> str:
    return (dt or now).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _webui(rb: Runbook) -> str:
    return f"/pages/viewpage.action?pageId={rb.page_id}"


def _search_result(rb: Runbook, base: str, now: datetime) -> dict[str, Any]:
    excerpt = " ".join(rb.body.split())
    return {
        "content": {
            "id": rb.page_id, "type": "page", "status": "current", "title": rb.title,
            "_links": {"webui": _webui(rb), "self": f"{base}/rest/api/content/{rb.page_id}",
                       "tinyui": f"/x/{rb.page_id}"},
            "_expandable": {"container": f"/rest/api/space/{rb.space}",
                            "space": f"/rest/api/space/{rb.space}", "version": "", "body": ""},
        },
        "title": rb.title,
        "excerpt": excerpt[:200] + ("…" if len(excerpt) > 200 else ""),
        "url": _webui(rb),
        "resultGlobalContainer": {"title": rb.space or "", "displayUrl": f"/display/{rb.space}"},
        "breadcrumbs": [],  # Cloud sends it (empty for a page), and its schema requires it
        "entityType": "content",
        "iconCssClass": "aui-icon content-type-page",
        "lastModified": _when(rb.updated_at, now),
        "friendlyLastModified": (rb.updated_at or now).strftime("%b %d, %Y"),
        "score": 0.0,
    }


def _content(rb: Runbook, base: str, now: datetime, expand: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rb.page_id, "type": "page", "status": "current", "title": rb.title}
    if "space" in expand:
        out["space"] = {"id": int(hashlib.sha256((rb.space or "").encode()).hexdigest()[:6], 16),
                        "key": rb.space, "name": rb.space, "type": "global",
                        "_links": {"webui": f"/display/{rb.space}",
                                   "self": f"{base}/rest/api/space/{rb.space}"}}
    if "version" in expand:
        author = {"type": "known", "username": "runbook-author", "displayName": "Runbook Author"}
        out["version"] = {"by": author, "when": _when(rb.updated_at, now), "number": 1, "message": "",
                          "minorEdit": False}
    if "body.storage" in expand or "body" in expand:
        out["body"] = {"storage": {"value": render_storage(rb.body), "representation": "storage",
                                   "_expandable": {"content": f"/rest/api/content/{rb.page_id}"}},
                       "_expandable": {"view": "", "export_view": "", "styled_view": "", "editor": ""}}
    if "metadata.labels" in expand:
        results = [{"prefix": "global", "name": label, "id": str(1000 + i), "label": label}
                   for i, label in enumerate(rb.labels)]
        out["metadata"] = {"labels": {"results": results, "start": 0, "limit": 200, "size": len(results),
                                      "_links": {"self": f"{base}/rest/api/content/{rb.page_id}/label"}}}
    out["_links"] = {"webui": _webui(rb), "edit": f"/pages/resumedraft.action?draftId={rb.page_id}",
                     "tinyui": f"/x/{rb.page_id}", "collection": "/rest/api/content",
                     "base": base, "context": CONTEXT_PATH, "self": f"{base}/rest/api/content/{rb.page_id}"}
    out["_expandable"] = {k: "" for k in ("children", "descendants", "history", "ancestors", "container")
                          if k not in expand}
    return out


# -- storage format ---------------------------------------------------------------------------------

_NUMBERED = re.compile(r"^\s*\d+[.)]\s+")
_BULLET = re.compile(r"^\s*[-*]\s+")


def render_storage(body: str) -> str:
    """A scenario's plain-text runbook as Confluence storage format: paragraphs, ``<ol>``/``<ul>``
    lists, ``<code>`` for backticks, fenced blocks as a code macro."""
    out: list[str] = []
    lines = body.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            lang = line.strip()[3:].strip()
            block: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(_code_macro("\n".join(block), lang))
            i += 1
            continue
        if not line.strip():
            i += 1
            continue
        for pattern, tag in ((_NUMBERED, "ol"), (_BULLET, "ul")):
            if pattern.match(line):
                items: list[str] = []
                while i < len(lines) and pattern.match(lines[i]):
                    items.append(pattern.sub("", lines[i], count=1))
                    i += 1
                out.append(_list(tag, items))
                break
        else:
            para: list[str] = []
            while (i < len(lines) and lines[i].strip() and not lines[i].strip().startswith("```")
                   and not _NUMBERED.match(lines[i]) and not _BULLET.match(lines[i])):
                para.append(lines[i].strip())
                i += 1
            out.append(_paragraph(" ".join(para)))
    return "".join(out)


def _paragraph(text: str) -> str:
    # "1. Check deploys. 2. Roll back." written on one line is still a numbered list.
    if re.match(r"1[.)]\s", text) and re.search(r"\s2[.)]\s", text):
        return _list("ol", [re.sub(r"^\d+[.)]\s+", "", part) for part in re.split(r"\s+(?=\d+[.)]\s)", text)])
    return f"<p>{_inline(text)}</p>"


def _list(tag: str, items: list[str]) -> str:
    return f"<{tag}>" + "".join(f"<li>{_inline(item.strip())}</li>" for item in items) + f"</{tag}>"


def _inline(text: str) -> str:
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick is just a character
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def _code_macro(code: str, language: str) -> str:
    lang = f'<ac:parameter ac:name="language">{html.escape(language)}</ac:parameter>' if language else ""
    safe = code.replace("]]>", "]]]]><![CDATA[>")
    return (f'<ac:structured-macro ac:name="code" ac:schema-version="1">{lang}'
            f"<ac:plain-text-body><![CDATA[{safe}]]></ac:plain-text-body></ac:structured-macro>")
