"""Jira: a read-only reader for evidence and idempotency checks, and a separate writer.

Client: `atlassian.Jira(url=<site>)`. Searching differs by deployment: Server/Data Center serve
``GET /rest/api/2/search`` (``jql()``, ``startAt`` paging), Jira Cloud has retired it for ``GET
/rest/api/3/search/jql`` (``enhanced_jql()``, ``nextPageToken`` paging). The deployment is told
from the host (``*.atlassian.net``, ``*.jira.com`` are Cloud), as the library itself does, or
passed as ``cloud=``. Both create with ``POST /rest/api/2/issue``. The library is blocking
(requests), so every call runs in a worker thread.

Two identities, two sessions: `JiraReader` may only search (its allowlist is that one GET), so
nothing reached through the evidence path can write. `JiraWriter` has its own session whose
allowlist is exactly ``POST /rest/api/2/issue``: it cannot even read. Only the tool choke point
calls it, after an approval was claimed for execution. Give it the constrained Jira account.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from math import ceil
from typing import Any, ClassVar
from urllib.parse import urlsplit

from atlassian import Jira

from bot.core.config import JiraSettings
from bot.core.errors import SourceUnavailable, WireRefused
from bot.core.models import Evidence, EvidenceKind, Provenance, ReferenceCheck, Source, evidence_id
from bot.core.redaction import clip
from connectors._http import Allowlist, base_path
from connectors._requests_guard import call_blocking, guard_session
from connectors._time import iso_time

SOURCE = "jira"
API = "/rest/api/2"
CLOUD_SEARCH = "/rest/api/3/search/jql"
SEARCH_FIELDS = "summary,status,labels,priority,issuetype,updated,created"
PAGE_SIZE = 50
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
SUMMARY_MAX = 255
DESCRIPTION_MAX = 32_000  # Jira's text fields hold 32,767 characters
_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-[0-9]+$")
_PROJECT = re.compile(r"^[A-Z][A-Z0-9_]{0,19}$")


class _JiraSession:
    """One `atlassian.Jira` client whose requests session is guarded by this class's `RULES`."""

    RULES: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, settings: JiraSettings, *, cloud: bool | None = None) -> None:
        self.settings = settings
        self.cloud = is_cloud(settings.base_url) if cloud is None else cloud
        self.base_path = base_path(settings.base_url)
        self.allowlist = Allowlist(SOURCE, self.rules(), base_path=self.base_path)
        auth: dict[str, Any] = (
            {"username": settings.username, "password": settings.token.get_secret_value()}
            if settings.username else {"token": settings.token.get_secret_value()}
        )
        self.client = Jira(url=settings.base_url.rstrip("/"), cloud=self.cloud, retry_with_header=False,
                           backoff_and_retry=False, timeout=max(1, ceil(settings.timeout_s)), **auth)
        self.adapter = guard_session(self.client.session, self.allowlist, base_url=settings.base_url,
                                     timeout_s=settings.timeout_s, max_retries=settings.max_retries)

    def rules(self) -> tuple[tuple[str, str], ...]:
        return self.RULES

    async def aclose(self) -> None:
        self.client.close()


class JiraReader(_JiraSession):
    """Searches Jira; can never write (the wire refuses anything but the one search GET)."""

    RULES: ClassVar[tuple[tuple[str, str], ...]] = (("GET", API + "/search"),)
    CLOUD_RULES: ClassVar[tuple[tuple[str, str], ...]] = (("GET", CLOUD_SEARCH),)

    def rules(self) -> tuple[tuple[str, str], ...]:
        return self.CLOUD_RULES if self.cloud else self.RULES

    @property
    def search_path(self) -> str:
        return self.base_path + (CLOUD_SEARCH if self.cloud else API + "/search")

    async def open_issues(self, project: str, service: str) -> list[Evidence]:
        """Unresolved issues of `project` that mention or are labelled with `service`: shown in the
        brief so nobody files a duplicate."""
        mention = " ".join(re.findall(r"[A-Za-z0-9]+", service))
        about = [f"labels = {_quote(service)}"] + ([f"text ~ {_quote(mention)}"] if mention else [])
        jql = (f"project = {_quote(project)} AND statusCategory != Done AND ({' OR '.join(about)}) "
               "ORDER BY updated DESC")
        issues = await self._search(jql, "jira.search", max_items=PAGE_SIZE * max(self.settings.max_pages, 1))
        return [self._evidence(issue, jql) for issue in issues]

    async def find_by_label(self, label: str) -> dict[str, str] | None:
        """The oldest issue carrying `label` (the bot's idempotency label) as ``{"key", "id",
        "url"}``, or None.

        Raises `SourceUnavailable` when Jira cannot be asked: a caller must then not create a
        ticket, since it cannot tell whether one exists. Jira's search index can trail a create
        by about a second, so this complements, never replaces, the approval state machine.
        """
        _check_label(label)
        found = await self._search(f"labels = {_quote(label)} ORDER BY created ASC", "jira.search",
                                   max_items=1, fields="summary,labels")
        if not found:
            return None
        key = str(found[0]["key"])
        return {"key": key, "id": str(found[0].get("id", "")), "url": f"{self.settings.link_base}/browse/{key}"}

    async def project_check(self, project: str) -> ReferenceCheck:
        """For ``doctor`` (tool ``jira.search``): whether Jira knows the project, by a search of it
        for one issue. Jira refuses a search naming a project that does not exist, or that the
        account may not browse, with HTTP 400 ("The value 'X' does not exist for the field
        'project'."); a project with no issues is found all the same."""
        try:
            await self._search(f"project = {_quote(project)}", "jira.search", max_items=1, fields="key")
        except WireRefused:
            raise
        except SourceUnavailable as exc:
            if exc.reason.startswith("HTTP 400"):
                return ReferenceCheck(state="missing", detail=exc.reason)
            raise
        return ReferenceCheck(state="found", detail="project searchable")

    async def write_probe(self) -> str:
        """The refusal of a write (create issue) by this reader's guard, before it leaves the process.
        The probe has no fields, which even a server would reject, so a broken guard does no harm."""
        return await _refusal(self.client.post, self.client.resource_url("issue"), data={"fields": {}})

    async def _search(self, jql: str, tool: str, *, max_items: int, fields: str = SEARCH_FIELDS
                      ) -> list[dict[str, Any]]:
        """Issues matching `jql`, following ``startAt`` (Server) or ``nextPageToken`` (Cloud)
        paging for at most `max_pages` pages, at most `max_items` of them."""
        issues: list[dict[str, Any]] = []
        start = 0
        token: str | None = None
        for _ in range(max(self.settings.max_pages, 1)):
            size = min(PAGE_SIZE, max_items - len(issues))
            if self.cloud:
                page = await call_blocking(SOURCE, tool, self.client.enhanced_jql, jql, fields=fields,
                                           nextPageToken=token, limit=size)
            else:
                page = await call_blocking(SOURCE, tool, self.client.jql, jql, fields=fields, start=start,
                                           limit=size)
            if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
                raise SourceUnavailable(SOURCE, "malformed JSON in search response", tool)
            batch = [i for i in page["issues"] if isinstance(i, dict) and _KEY.match(str(i.get("key", "")))]
            issues.extend(batch[: max_items - len(issues)])
            start += len(page["issues"])
            if not page["issues"] or len(issues) >= max_items:
                break
            if self.cloud:
                next_token = page.get("nextPageToken")
                if page.get("isLast") is not False or not isinstance(next_token, str) or not next_token:
                    break
                token = next_token
            elif isinstance(page.get("total"), int) and start >= page["total"]:
                break
        return issues

    def _evidence(self, issue: dict[str, Any], jql: str) -> Evidence:
        key = str(issue["key"])
        raw_fields = issue.get("fields")
        fields: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
        summary = str(fields.get("summary") or "")
        status = str(_name(fields.get("status")) or "unknown")
        priority = _name(fields.get("priority"))
        labels = [str(lb) for lb in fields.get("labels") or [] if isinstance(lb, str)]
        details = [f"status {status}"] + ([f"priority {priority}"] if priority else []) \
            + ([f"labels {', '.join(labels)}"] if labels else [])
        return Evidence(
            id=evidence_id(EvidenceKind.JIRA_ISSUE, key),
            kind=EvidenceKind.JIRA_ISSUE,
            source=Source.JIRA,
            title=f"{key}: {summary}" if summary else key,
            excerpt=(f"{summary} " if summary else "") + f"({'; '.join(details)})",
            timestamp=iso_time(fields.get("updated") or fields.get("created")),
            link=f"{self.settings.link_base}/browse/{key}",
            provenance=Provenance(system=Source.JIRA, tool="jira.search",
                                  request=f"GET {self.search_path}?jql={jql}",
                                  fetched_at=datetime.now(UTC)),
            ref={"key": key},
            data={"key": key, "status": status, "labels": labels, "priority": priority},
        )


class JiraWriter(_JiraSession):
    """Files tickets. Its own session, whose allowlist is only ``POST /rest/api/2/issue``.
    Only the tool choke point may call `create_issue`, and only after an approval."""

    RULES: ClassVar[tuple[tuple[str, str], ...]] = (("POST", API + "/issue"),)

    def __init__(self, settings: JiraSettings, *, issue_type: str = "Task", cloud: bool | None = None) -> None:
        super().__init__(settings, cloud=cloud)
        self.issue_type = issue_type

    async def create_issue(self, project: str, summary: str, description: str, priority: str,
                           labels: list[str]) -> dict[str, str]:
        """File one issue; returns ``{"key", "id", "url"}``. Bad arguments raise `ValueError`
        before anything is sent; a refusal by Jira raises `SourceUnavailable` with its reason."""
        fields = self.issue_fields(project, summary, description, priority, labels)
        created = await call_blocking(SOURCE, "jira.create_issue", self.client.create_issue, fields=fields)
        key = created.get("key") if isinstance(created, dict) else None
        if not isinstance(key, str) or not _KEY.match(key):
            raise SourceUnavailable(SOURCE, "malformed JSON in create response", "jira.create_issue")
        return {"key": key, "id": str(created.get("id", "")), "url": f"{self.settings.link_base}/browse/{key}"}

    def issue_fields(self, project: str, summary: str, description: str, priority: str,
                     labels: list[str]) -> dict[str, Any]:
        """The exact ``fields`` object `create_issue` sends (also what a dry run previews)."""
        if not _PROJECT.match(project):
            raise ValueError(f"not a Jira project key: {project!r}")
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
        for label in labels:
            _check_label(label)
        line = " ".join(summary.split())
        if not line:
            raise ValueError("a ticket needs a summary")
        if len(line) > SUMMARY_MAX:
            line = clip(line, SUMMARY_MAX)  # masked before it is cut
        return {
            "project": {"key": project},
            "summary": line,
            "description": (description if len(description) <= DESCRIPTION_MAX
                            else clip(description, DESCRIPTION_MAX, one_line=False)),
            "issuetype": {"name": self.issue_type},
            "priority": {"name": priority},
            "labels": list(dict.fromkeys(labels)),
        }

    async def write_probe(self) -> str:
        """The refusal of a write outside the writer's one POST (deleting an issue)."""
        return await _refusal(self.client.delete, self.client.resource_url("issue/PROBE-0"))


async def _refusal(send: Any, *args: Any, **kwargs: Any) -> str:
    """The guard's refusal message, or "" when the request left the process (the guard failed)."""
    try:
        await asyncio.to_thread(send, *args, **kwargs)
    except WireRefused as refused:
        return str(refused)
    except Exception:  # it left the process: whatever came back, the guard failed
        return ""
    return ""


def is_cloud(base_url: str) -> bool:
    """Jira Cloud's hosts, as atlassian-python-api tells them apart."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host.endswith((".atlassian.net", ".jira.com")) or host in ("atlassian.net", "jira.com")


def _check_label(label: str) -> None:
    if not label or len(label) > 255 or re.search(r"\s", label):
        raise ValueError(f"not a valid Jira label (non-empty, no spaces, at most 255 characters): {label!r}")


def _quote(value: str) -> str:
    """A JQL string literal; the value is data, never syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _name(value: Any) -> str | None:
    return str(value["name"]) if isinstance(value, dict) and value.get("name") else None


