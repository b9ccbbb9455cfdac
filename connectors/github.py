"""GitHub: what was deployed, when, by whom, and which commits and pull requests it shipped.

Read-only at the wire: the client refuses anything but the six GETs in `RULES`. One
`recent_deploys` call lists a repository's deployments to an environment (newest first,
following ``Link: rel="next"`` for at most ``settings.max_pages`` pages), then for each deploy
in the window reads its latest status, compares it with the deploy before it to find the
commits it shipped, and looks up those commits' pull requests (title, labels, the start of the
body) and the files they changed (``GET /pulls/{n}/files``, paged, bounded): what a change
touched is how the analysis tells a change to the failing part from a copy edit. A deploy whose details cannot
be read is still reported, saying what is missing; only the listing itself failing makes
GitHub a gap. GitHub's JSON is read into deployments, commits and pull requests by
`connectors.github_shapes`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.core.config import GitHubSettings
from bot.core.errors import ConfigError, SourceUnavailable, WireRefused
from bot.core.models import Evidence, EvidenceKind, Provenance, ReferenceCheck, Source, TimeWindow, evidence_id
from connectors import github_shapes as shapes
from connectors._http import Allowlist, ReadOnlyTransport, base_path, send
from connectors._retry import RetryPolicy
from connectors.github_shapes import Commit, Deployment, Pull

SOURCE = "github"
RULES = (
    ("GET", "/repos/{owner}/{repo}/deployments"),
    ("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("GET", "/repos/{owner}/{repo}/compare/{basehead}"),
    ("GET", "/repos/{owner}/{repo}/commits/{sha}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls/{number}"),
    ("GET", "/repos/{owner}/{repo}/pulls/{number}/files"),
)
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
           "User-Agent": "incident-brief"}
# A bad deploy can sit in the day before the baseline starts (a slow leak, a nightly job).
DEPLOY_LOOKBACK = timedelta(hours=24)
PER_PAGE = 30
MAX_PR_LOOKUPS = 8  # per deploy: the newest commits of a large deploy are the likeliest culprits
MAX_EXCERPT_COMMITS = 4
# What a deploy's pull requests touched, bounded: a mass rename says "everything" at 100 paths
# as well as at 3,000 (GitHub's own cap), and the body's first lines hold its summary.
MAX_EXCERPT_FILES = 5
MAX_FILE_PRS = 3  # per deploy, newest PR numbers first
FILES_PER_PAGE = 100
MAX_FILE_PAGES = 2
MAX_FILES = 100
CONCURRENCY = 4
WRITE_PROBE_REPO = "incident-brief/write-probe"
# What GitHub's refusal of one repository's deployments means (`repo_check`); GitHub answers 404,
# not 403, for a private repository the token cannot see.
_UNREADABLE = {
    "HTTP 404": "HTTP 404: no such repository, or the token cannot see it",
    "HTTP 403": "HTTP 403: the token may not read its deployments",
}

_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_HEX_REF = re.compile(r"[0-9a-fA-F]{7,64}")
_SQUASH_PR = re.compile(r"\(#(\d{1,9})\)\s*$")

log = logging.getLogger(__name__)


def read_only_allowlist(settings: GitHubSettings) -> Allowlist:
    return Allowlist(SOURCE, RULES, base_path=base_path(settings.base_url))


def build_client(settings: GitHubSettings, transport: httpx.AsyncBaseTransport | None = None,
                 allowlist: Allowlist | None = None) -> httpx.AsyncClient:
    """The connector's HTTP client: bearer auth, GitHub's media type, the read-only allowlist."""
    headers = dict(HEADERS)
    if token := settings.token.get_secret_value():
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(
        base_url=settings.base_url.rstrip("/"), headers=headers, timeout=settings.timeout_s,
        transport=ReadOnlyTransport(allowlist or read_only_allowlist(settings), transport),
        follow_redirects=False,
    )


@dataclass
class Shipped:
    """What one deploy carried, as far as GitHub could tell us."""

    status: str | None = None
    base_sha: str | None = None
    compare_status: str | None = None  # ahead | behind | identical | diverged
    commits: list[Commit] = field(default_factory=list)
    total_commits: int = 0
    pulls: dict[int, Pull] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # paths the pull requests changed, bounded
    files_total: int = 0  # how many GitHub listed (may exceed what is kept)
    missing: list[str] = field(default_factory=list)
    latest_as_of: datetime | None = None  # set on the newest deploy: nothing later up to then
    # Shared by every deploy of one listing: once one kind of detail read (a tool) times out or
    # errors, the remaining reads of that kind are skipped instead of each waiting out retries.
    outage: dict[str, str] = field(default_factory=dict)


class GitHubConnector:
    """Reads deployments and what they shipped from one GitHub (or GHES) API."""

    def __init__(self, settings: GitHubSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._allowlist = read_only_allowlist(settings)
        self._client = build_client(settings, transport, self._allowlist)
        self._origin = httpx.URL(settings.base_url)
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._retry = RetryPolicy(settings.max_retries)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def recent_deploys(self, repo: str, window: TimeWindow,
                             environment: str = "production") -> list[Evidence]:
        """Every deploy of `repo` to `environment` from a day before the baseline to the window's
        end, plus the last deploy before that (so "nothing shipped since X" is citable)."""
        if not _REPO.fullmatch(repo):
            raise SourceUnavailable(SOURCE, f"invalid repository name {repo[:80]!r} (want owner/name)",
                                    "github.list_deployments")
        since = window.baseline_start - DEPLOY_LOOKBACK
        listed, request_line = await self._list_deployments(repo, environment, since)
        in_window = [d for d in listed if since <= d.created_at <= window.end]
        before = next((d for d in listed if d.created_at < since), None)
        chosen = in_window + ([before] if before else [])
        fetched_at = datetime.now(UTC)
        outage: dict[str, str] = {}
        shipped = await asyncio.gather(*(
            self._shipped(repo, dep, _previous(listed, dep), Shipped(outage=outage)) for dep in chosen
        ))
        provenance = Provenance(system=Source.GITHUB, tool="github.list_deployments",
                                request=request_line, fetched_at=fetched_at)
        newest = chosen[0].id if chosen else None
        for what, dep in zip(shipped, chosen, strict=True):
            if dep.id == newest:
                what.latest_as_of = window.end
        return [self._evidence(repo, dep, what, provenance)
                for dep, what in zip(chosen, shipped, strict=True)]

    async def repo_check(self, repo: str) -> ReferenceCheck:
        """For ``doctor`` (tool ``github.list_deployments``): whether the token can list `repo`'s
        deployments, the read every brief makes (one deployment at most). Reading the deployments
        rather than the repository also catches a token that sees the repository but not them."""
        tool = "github.list_deployments"
        if not _REPO.fullmatch(repo):
            return ReferenceCheck(state="missing", detail="not a repository name (want owner/name)")
        try:
            response = await self._send(f"/repos/{repo}/deployments?per_page=1", tool)
        except WireRefused:
            raise
        except SourceUnavailable as exc:
            if exc.reason in _UNREADABLE:
                return ReferenceCheck(state="missing", detail=_UNREADABLE[exc.reason])
            raise
        if response.is_redirect:
            # A renamed or transferred repository: GitHub redirects, and a brief would not follow.
            return ReferenceCheck(state="missing", detail=f"HTTP {response.status_code}: moved (renamed or "
                                  "transferred?); name its new owner/name in the catalog")
        _parse_list(response, tool)
        return ReferenceCheck(state="found", detail="deployments readable")

    async def write_probe(self, repo: str = WRITE_PROBE_REPO) -> str:
        """Try a write (create a deployment) through the connector's own client; return the
        refusal. Used by ``doctor`` to prove the connector cannot write."""
        path = f"/repos/{repo}/deployments"
        if self._allowlist.allows("POST", base_path(self.settings.base_url) + path):
            raise ConfigError(f"github: the allowlist would let POST {path} through")
        try:
            await self._client.post(path, json={"ref": "main", "environment": "write-probe"})
        except WireRefused as exc:
            return str(exc)
        raise ConfigError(f"github: POST {path} was not refused by the read-only transport")

    async def _list_deployments(self, repo: str, environment: str,
                                since: datetime) -> tuple[list[Deployment], str]:
        """Newest first, until one deploy older than `since` has been seen (or pages run out)."""
        query = urlencode({"environment": environment, "per_page": PER_PAGE})
        first = f"/repos/{repo}/deployments?{query}"
        url: str | None = first
        found: list[Deployment] = []
        pages = 0
        while url is not None and pages < max(self.settings.max_pages, 1):
            response = await self._send(url, "github.list_deployments")
            pages += 1
            page = _parse_list(response, "github.list_deployments")
            found += [d for d in (shapes.deployment(item) for item in page) if d is not None]
            url = None if any(d.created_at < since for d in found) else self._next_page(response)
        if url is not None:
            log.info("github: listed %s deployments for %d pages only (max_pages)", repo, pages)
        found.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return found, f"GET {base_path(self.settings.base_url)}{first}"

    def _next_page(self, response: httpx.Response, tool: str = "github.list_deployments") -> str | None:
        """The ``rel="next"`` link, only if it points back at the API we were configured with:
        a link elsewhere must not receive our token."""
        target = response.links.get("next", {}).get("url")
        if not target:
            return None
        url = httpx.URL(target)
        if (url.scheme, url.host, url.port) != (self._origin.scheme, self._origin.host, self._origin.port):
            raise SourceUnavailable(SOURCE, "pagination link points to another host", tool)
        return str(url)

    async def _shipped(self, repo: str, dep: Deployment, previous: Deployment | None,
                       out: Shipped) -> Shipped:
        status_call = self._latest_status(repo, dep, out)
        commits_call = self._commits(repo, dep, previous, out)
        await asyncio.gather(status_call, commits_call)
        head_pr_known = any(c.sha == dep.sha for c in out.commits)
        shas = [c.sha for c in out.commits][-MAX_PR_LOOKUPS:]
        if not head_pr_known and out.compare_status is None:
            shas.append(dep.sha)  # no compare (first deploy seen, or it failed): the head still has PRs
        await asyncio.gather(*(self._pulls(repo, sha, out) for sha in shas))
        numbers = sorted(out.pulls, reverse=True)[:MAX_FILE_PRS]
        listed = await asyncio.gather(*(self._pull_files(repo, n, out) for n in numbers))
        for paths in listed:
            out.files_total += len(paths)
            out.files += [p for p in paths if p not in out.files][:max(MAX_FILES - len(out.files), 0)]
        return out

    async def _latest_status(self, repo: str, dep: Deployment, out: Shipped) -> None:
        url = f"/repos/{repo}/deployments/{dep.id}/statuses?per_page=1"
        statuses = await self._enrich(url, "github.list_deployment_statuses", out, "status")
        if isinstance(statuses, list) and statuses and isinstance(statuses[0], dict):
            state = statuses[0].get("state")
            out.status = state if isinstance(state, str) else None

    async def _commits(self, repo: str, dep: Deployment, previous: Deployment | None, out: Shipped) -> None:
        if previous is None or not shapes.SHA.fullmatch(previous.sha):
            return
        out.base_sha = previous.sha
        body = await self._enrich(f"/repos/{repo}/compare/{previous.sha}...{dep.sha}", "github.compare",
                                  out, "commits")
        if not isinstance(body, dict):
            return
        status, total = body.get("status"), body.get("total_commits")
        out.compare_status = status if isinstance(status, str) else None
        commits = [c for c in (shapes.commit(item) for item in shapes.as_list(body.get("commits"))) if c is not None]
        out.commits = commits
        out.total_commits = total if isinstance(total, int) else len(commits)

    async def _pulls(self, repo: str, sha: str, out: Shipped) -> None:
        pulls = await self._enrich(f"/repos/{repo}/commits/{sha}/pulls", "github.list_commit_pulls",
                                   out, "pull requests")
        found = [p for p in shapes.as_list(pulls) if isinstance(p, dict)]
        if not found:
            # A squash merge whose association GitHub has not indexed still names its PR.
            message = next((c.message for c in out.commits if c.sha == sha), "")
            if (squash := _SQUASH_PR.search(_first_line(message))) is not None:
                pull = await self._enrich(f"/repos/{repo}/pulls/{squash.group(1)}", "github.get_pull",
                                          out, "pull requests")
                if isinstance(pull, dict) and pull.get("merged_at"):
                    found = [pull]
        for pull in found:
            number, title = pull.get("number"), pull.get("title")
            if isinstance(number, int) and isinstance(title, str):
                out.pulls.setdefault(number, Pull(title, shapes.login(pull.get("user")),
                                                  shapes.labels(pull.get("labels")), shapes.body(pull.get("body"))))

    async def _pull_files(self, repo: str, number: int, out: Shipped) -> list[str]:
        """The paths one pull request changed, following ``rel="next"`` for a few pages."""
        url: str | None = f"/repos/{repo}/pulls/{number}/files?per_page={FILES_PER_PAGE}"
        paths: list[str] = []
        for _ in range(MAX_FILE_PAGES):
            if url is None:
                break
            if "github.list_pull_files" in out.outage:
                _note_missing(out, "changed files")
                break
            try:
                response = await self._send(url, "github.list_pull_files", out.outage)
                page = _parse_list(response, "github.list_pull_files")
                url = self._next_page(response, "github.list_pull_files")
            except WireRefused:
                raise
            except SourceUnavailable as exc:
                _note_missing(out, "changed files")
                if not _is_item_error(exc.reason):
                    out.outage.setdefault("github.list_pull_files", exc.reason)
                break
            paths += [item["filename"] for item in page
                      if isinstance(item, dict) and isinstance(item.get("filename"), str)]
        return paths

    async def _enrich(self, url: str, tool: str, out: Shipped, what: str) -> Any:
        """A detail read: on failure the deploy is still reported, saying what is missing."""
        if tool in out.outage:
            _note_missing(out, what)
            return None
        try:
            return _parse_json(await self._send(url, tool, out.outage), tool)
        except WireRefused:
            raise
        except SourceUnavailable as exc:
            _note_missing(out, what)
            if not _is_item_error(exc.reason):
                out.outage.setdefault(tool, exc.reason)
            log.info("github: %s unavailable for %s: %s", what, url, exc.reason)
            return None

    async def _send(self, url: str, tool: str, outage: dict[str, str] | None = None) -> httpx.Response:
        async with self._limit:
            # Checked again once a slot is free: reads queued behind one that failed are skipped.
            if outage is not None and tool in outage:
                raise SourceUnavailable(SOURCE, outage[tool], tool)
            return await send(self._client, "GET", url, source=SOURCE, tool=tool, retry=self._retry)

    def _evidence(self, repo: str, dep: Deployment, what: Shipped, provenance: Provenance) -> Evidence:
        short = dep.sha[:7]
        title = (f"Deploy {short} to {dep.environment}" if _names_commit(dep.ref)
                 else f"Deploy {dep.ref} ({short}) to {dep.environment}")
        pulls = [{"number": n, "title": p.title, "labels": p.labels, "body": p.body}
                 for n, p in sorted(what.pulls.items())]
        authors = sorted({c.author for c in what.commits if c.author}
                         | {p.author for p in what.pulls.values() if p.author})
        if len(pulls) == 1:
            link = f"{self.settings.link_base}/{repo}/pull/{pulls[0]['number']}"
        else:
            link = f"{self.settings.link_base}/{repo}/commit/{dep.sha}"
        return Evidence(
            id=evidence_id(EvidenceKind.DEPLOY, f"{repo}#{dep.id}"),
            kind=EvidenceKind.DEPLOY, source=Source.GITHUB,
            title=title,
            excerpt=_excerpt(dep, what), timestamp=dep.created_at, link=link, provenance=provenance,
            ref={"sha": dep.sha, "deployment_id": str(dep.id)},
            data={
                "deployment_id": dep.id, "sha": dep.sha, "ref": dep.ref, "environment": dep.environment,
                "creator": dep.creator, "status": what.status, "description": dep.description,
                "pull_requests": pulls, "files": list(what.files), "files_total": what.files_total,
                "repo": repo, "previous_sha": what.base_sha,
                "compare_status": what.compare_status, "total_commits": what.total_commits,
                "commits": [{"sha": c.sha, "message": _first_line(c.message), "author": c.author}
                            for c in what.commits],
                "authors": authors, "missing": list(what.missing),
                "latest": what.latest_as_of is not None,
            },
        )


def _excerpt(dep: Deployment, what: Shipped) -> str:
    """One readable paragraph: who shipped what, when, and whether it went out."""
    when = dep.created_at.astimezone(UTC).strftime("%H:%M UTC on %Y-%m-%d")
    what_shipped = dep.sha[:7] if _names_commit(dep.ref) else f"{dep.ref} ({dep.sha[:7]})"
    text = f"{what_shipped} deployed to {dep.environment} at {when}"
    text += f" by {dep.creator}" if dep.creator else ""
    text += f": {dep.description}" if dep.description else ""
    if what.pulls:
        text += " (" + "; ".join(_by(f'PR #{n} "{p.title}"', p.author) for n, p in sorted(what.pulls.items())) + ")"
    if what.files:
        shown = ", ".join(what.files[:MAX_EXCERPT_FILES])
        more = what.files_total - min(len(what.files), MAX_EXCERPT_FILES)
        text += f"; changed {shown}" + (f" and {more} more file(s)" if more > 0 else "")
    text += f". Status: {what.status or 'unknown'}."
    if what.base_sha:
        text += _compare_sentence(what, what.base_sha[:7])
    if what.latest_as_of is not None:
        until = what.latest_as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text += f" No later deploy to {dep.environment} up to {until}."
    if what.missing:
        text += f" Not available from GitHub: {', '.join(what.missing)}."
    return text


def _compare_sentence(what: Shipped, base: str) -> str:
    if what.compare_status == "identical":
        return f" Same commit as the previous deploy ({base}): nothing new shipped."
    if what.compare_status == "behind":
        return f" Behind the previous deploy ({base}): a rollback."
    if not what.commits:
        return ""
    shown = what.commits[-MAX_EXCERPT_COMMITS:]
    listed = "; ".join(_by(f'{c.sha[:7]} "{_first_line(c.message)}"', c.author) for c in reversed(shown))
    more = what.total_commits - len(shown)
    return (f" Shipped {what.total_commits} commit(s) since {base}: {listed}"
            + (f" and {more} more." if more > 0 else "."))


def _names_commit(ref: str) -> bool:
    """A ref that is a commit id (full or abbreviated), as deploy tools often send, not a branch
    or tag: the short SHA says it all, a 40-character title says nothing more."""
    return _HEX_REF.fullmatch(ref) is not None


def _by(text: str, author: str | None) -> str:
    return f"{text} by {author}" if author else text


def _first_line(message: str) -> str:
    return message.strip().split("\n", 1)[0].strip()


def _note_missing(out: Shipped, what: str) -> None:
    if what not in out.missing:
        out.missing.append(what)


def _is_item_error(reason: str) -> bool:
    """A 4xx other than 429 concerns one object (a sha GitHub no longer knows), not the source."""
    return reason.startswith("HTTP 4") and not reason.startswith("HTTP 429")


def _previous(listed: list[Deployment], dep: Deployment) -> Deployment | None:
    """The deploy to the same environment just before `dep` (the list is newest first)."""
    older = [d for d in listed if (d.created_at, d.id) < (dep.created_at, dep.id)]
    return older[0] if older else None


def _parse_json(response: httpx.Response, tool: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise SourceUnavailable(SOURCE, "malformed JSON in response", tool) from exc


def _parse_list(response: httpx.Response, tool: str) -> list[Any]:
    body = _parse_json(response, tool)
    if not isinstance(body, list):
        raise SourceUnavailable(SOURCE, "unexpected response shape (expected a list)", tool)
    return body
