"""Fake Jira: REST API v2 as Server/Data Center serve it, plus Jira Cloud's v3 enhanced search.

Routes (tool names in brackets):
- ``GET /rest/api/2/search?jql=&startAt=&maxResults=&fields=`` [jira.search]: a JQL subset
  (``project``, ``key``/``issuekey``, ``labels``, ``status``, ``statusCategory``, ``priority``,
  ``issuetype``, ``text ~``, ``summary ~``, ``description ~``; ``= != ~ !~ IN NOT IN``;
  ``AND OR NOT`` and parentheses; ``ORDER BY`` accepted and ignored). ``~`` needs every word of
  its value. An unknown field or project is a 400, as in Jira.
- ``GET /rest/api/3/search/jql?jql=&nextPageToken=&maxResults=&fields=`` [jira.search]: Jira
  Cloud's enhanced search over the same JQL: ``{"issues", "nextPageToken", "isLast"}``, no total,
  an opaque token per next page (a bad token is a 400), rich text as ADF.
- ``POST /rest/api/2/issue`` [jira.create_issue]: validates the fields the way Jira does
  (400 ``{"errorMessages": [], "errors": {field: message}}``), numbers the key after the
  project's existing keys, answers 201 ``{"id", "key", "self"}``. The issue becomes searchable
  at once, labels included (the bot's idempotency label lives there).
- ``GET /rest/api/2/issue/{key}`` [jira.get_issue], ``GET /rest/api/2/serverInfo``
  [jira.server_info].

Every route needs the sandbox API token (HTTP Basic password or Bearer). Created issues are kept on the
app (`JiraApp.created`) so tests can inspect exactly what was filed.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sandbox.confluence import (
    Clause,
    QueryError,
    all_clauses,
    all_terms_hit,
    basic_auth,
    evaluate,
    parse_query,
    words,
)
from sandbox.core import Reply, SandboxContext, SandboxRequest, SystemApp

API = "/rest/api/2"
CLOUD_SEARCH = "/rest/api/3/search/jql"
DEFAULT_MAX_RESULTS = 50
MAX_RESULTS_CAP = 100
ISSUE_TYPES = ("Task", "Bug", "Incident", "Story", "Epic")
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
SETTABLE_FIELDS = {"project", "summary", "description", "issuetype", "priority", "labels"}
_DONE = {"done", "closed", "resolved", "won't do", "cancelled"}
_TODO = {"open", "to do", "todo", "backlog", "new", "reopened", "selected for development"}


@dataclass
class Issue:
    id: str
    key: str
    summary: str
    status: str = "Open"
    labels: list[str] = field(default_factory=list)
    description: str = ""
    priority: str = "Medium"
    issuetype: str = "Task"
    created: datetime | None = None
    updated: datetime | None = None
    provenance: str = ""

    @property
    def project(self) -> str:
        return self.key.rsplit("-", 1)[0]

    @property
    def number(self) -> int:
        tail = self.key.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    @property
    def status_category(self) -> tuple[str, str, str]:
        """(key, name, colour) as Jira reports a status category."""
        status = self.status.lower()
        if status in _DONE:
            return "done", "Done", "green"
        if status in _TODO:
            return "new", "To Do", "blue-gray"
        return "indeterminate", "In Progress", "yellow"


class JiraApp(SystemApp):
    """The fake Jira plus its mutable state: every issue, and the ones filed through the API."""

    def __init__(self, ctx: SandboxContext) -> None:
        denial = "You are not authenticated. Authentication required to perform this operation."
        super().__init__("jira", ctx, auth=basic_auth(ctx, {"errorMessages": [denial], "errors": {}}))
        existing = ctx.scenario.world.jira.existing_issues
        created_at = ctx.now - timedelta(days=7)
        self.issues: list[Issue] = [
            Issue(id=str(10000 + i), key=item.key, summary=item.summary, status=item.status,
                  labels=list(item.labels), created=created_at, updated=created_at, provenance=item.key)
            for i, item in enumerate(existing)
        ]
        catalog = {(c.jira or {}).get("project") for c in ctx.scenario.catalog}
        self.projects: set[str] = {p for p in catalog if p} | {i.project for i in self.issues}
        self.created: list[dict[str, Any]] = []  # {"id", "key", "fields": <as posted>}

    @property
    def base_url(self) -> str:
        return self.ctx.urls.get("jira", "")

    def create(self, fields: dict[str, Any]) -> Issue:
        """File a validated issue: the next key of its project, searchable at once."""
        project = str(fields["project"]["key"]).upper()
        number = max((i.number for i in self.issues if i.project == project), default=0) + 1
        issue = Issue(
            id=str(10000 + len(self.issues)), key=f"{project}-{number}", summary=fields["summary"].strip(),
            labels=list(fields.get("labels") or []), description=fields.get("description") or "",
            priority=(fields.get("priority") or {}).get("name", "Medium"),
            issuetype=fields["issuetype"]["name"], created=self.ctx.now, updated=self.ctx.now,
        )
        issue.provenance = issue.key
        self.issues.append(issue)
        self.created.append({"id": issue.id, "key": issue.key, "fields": fields})
        return issue


def build(ctx: SandboxContext) -> SystemApp:
    app = JiraApp(ctx)

    def hits_for(req: SandboxRequest) -> list[Issue]:
        node = parse_query(req.q("jql") or "")
        for clause in all_clauses(node):  # bad fields and projects are a 400 even with no issues
            _matches(app, _PROBE, clause)
        return [issue for issue in app.issues if evaluate(node, partial(_matches, app, issue))]

    @app.route("GET", API + "/search", tool="jira.search")
    async def search(req: SandboxRequest) -> Reply:
        try:
            start = _int_param(req, "startAt", 0)
            max_results = min(_int_param(req, "maxResults", DEFAULT_MAX_RESULTS), MAX_RESULTS_CAP)
            hits = hits_for(req)
        except QueryError as exc:
            return _errors(400, [str(exc)])
        window = hits[start:start + max_results]
        wanted = _wanted_fields(req.q("fields"))
        return Reply({
            "expand": "schema,names", "startAt": start, "maxResults": max_results, "total": len(hits),
            "issues": [_issue_json(app, issue, wanted) for issue in window],
        }, provenance=[i.provenance for i in window])

    @app.route("GET", CLOUD_SEARCH, tool="jira.search")
    async def search_jql(req: SandboxRequest) -> Reply:
        """Jira Cloud's enhanced search: an opaque ``nextPageToken`` instead of ``startAt``, no total."""
        try:
            if not req.q("jql"):
                raise QueryError("Unbounded JQL queries are not allowed here. Please add a search restriction.")
            start = _offset(req.q("nextPageToken"))
            max_results = min(_int_param(req, "maxResults", DEFAULT_MAX_RESULTS), MAX_RESULTS_CAP)
            hits = hits_for(req)
        except QueryError as exc:
            return _errors(400, [str(exc)])
        window = hits[start:start + max_results]
        wanted = _wanted_fields(req.q("fields"))
        body: dict[str, Any] = {"issues": [_issue_json(app, issue, wanted, adf=True) for issue in window],
                                "isLast": start + max_results >= len(hits)}
        if not body["isLast"]:
            body["nextPageToken"] = _token(start + max_results)
        return Reply(body, provenance=[i.provenance for i in window])

    @app.route("POST", API + "/issue", tool="jira.create_issue")
    async def create_issue(req: SandboxRequest) -> Reply:
        try:
            body = req.json()
        except ValueError:
            return _errors(400, ["Unexpected character in the request body: not JSON"])
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            return _errors(400, ["Can not deserialize the request: a 'fields' object is required"])
        problems = _validate(app, body["fields"])
        if problems:
            return Reply({"errorMessages": [], "errors": problems}, status=400)
        issue = app.create(body["fields"])
        return Reply({"id": issue.id, "key": issue.key, "self": f"{app.base_url}{API}/issue/{issue.id}"},
                     status=201, provenance=[issue.provenance])

    @app.route("GET", API + "/issue/{key}", tool="jira.get_issue")
    async def get_issue(req: SandboxRequest) -> Reply:
        wanted = req.path_params["key"]
        issue = next((i for i in app.issues if wanted in (i.id, i.key)), None)
        if issue is None:
            return _errors(404, ["Issue Does Not Exist"])
        return Reply(_issue_json(app, issue, _wanted_fields(req.q("fields"))), provenance=[issue.provenance])

    @app.route("GET", API + "/serverInfo", tool="jira.server_info")
    async def server_info(req: SandboxRequest) -> Reply:
        return Reply({"baseUrl": app.base_url, "version": "9.12.2", "versionNumbers": [9, 12, 2],
                      "deploymentType": "Server", "buildNumber": 9120002,
                      "serverTime": ctx.now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                      "scmInfo": "sandbox", "serverTitle": "Jira (incident-brief sandbox)"})

    return app


_PROBE = Issue(id="0", key="PROBE-0", summary="")


def _matches(app: JiraApp, issue: Issue, clause: Clause) -> bool:
    name, op = clause.field, clause.op
    if name in ("text", "summary", "description"):
        if op not in ("~", "!~"):
            raise QueryError(f"The operator '{op}' is not supported by the '{name}' field.")
        text = {"summary": issue.summary, "description": issue.description}.get(
            name, f"{issue.summary} {issue.description}")
        found = any(all_terms_hit(v, set(words(text))) for v in clause.values)
        return found if op == "~" else not found
    if op in ("~", "!~"):
        raise QueryError(f"The operator '{op}' is not supported by the '{name}' field.")
    values = {v.lower() for v in clause.values}
    if name == "project":
        unknown = sorted(v for v in clause.values if v.upper() not in app.projects)
        if unknown:
            raise QueryError(f"The value '{unknown[0]}' does not exist for the field 'project'.")
        actual = {issue.project.lower()}
    elif name in ("key", "issuekey", "id"):
        actual = {issue.key.lower(), issue.id}
    elif name == "labels":
        actual = {label.lower() for label in issue.labels}
    elif name == "status":
        actual = {issue.status.lower()}
    elif name == "statuscategory":
        key, label, _colour = issue.status_category
        actual = {key, label.lower()}
    elif name == "priority":
        actual = {issue.priority.lower()}
    elif name in ("issuetype", "type"):
        actual = {issue.issuetype.lower()}
    else:
        raise QueryError(f"Field '{clause.field}' does not exist or you do not have permission to view it.")
    hit = bool(actual & values)
    return hit if op in ("=", "in") else not hit


def _validate(app: JiraApp, fields: dict[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    for name in sorted(set(fields) - SETTABLE_FIELDS):
        problems[name] = (f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown.")
    project = fields.get("project")
    if not isinstance(project, dict) or not project:
        problems["project"] = "project is required"
    elif str(project.get("key", "")).upper() not in app.projects:  # this fake knows projects by key only
        problems["project"] = "valid project is required"
    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        problems["summary"] = "You must specify a summary of the issue."
    elif len(summary) > 255:
        problems["summary"] = "Summary must be less than 255 characters."
    elif "\n" in summary or "\r" in summary:
        problems["summary"] = "The summary is invalid because it contains newline characters."
    issuetype = fields.get("issuetype")
    if not isinstance(issuetype, dict) or not issuetype.get("name"):
        problems["issuetype"] = "issue type is required"
    elif issuetype["name"] not in ISSUE_TYPES:
        problems["issuetype"] = "Specify a valid issue type"
    priority = fields.get("priority")
    if priority is not None and (not isinstance(priority, dict) or priority.get("name") not in PRIORITIES):
        problems["priority"] = f"Priority name '{(priority or {}).get('name')}' is not valid"
    if "description" in fields and not isinstance(fields["description"], str):
        problems["description"] = "Operation value must be a string"
    labels = fields.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        problems["labels"] = "Operation value must be an array of strings"
    else:
        bad = next((lb for lb in labels if not lb or re.search(r"\s", lb) or len(lb) > 255), None)
        if bad is not None:
            problems["labels"] = f"The label '{bad}' contains spaces which is invalid."
    return problems


def _wanted_fields(raw: str | None) -> set[str] | None:
    """None means every field (Jira's default, ``*all`` and ``*navigable``)."""
    if not raw:
        return None
    names = {part.strip().lower() for part in raw.split(",") if part.strip()}
    return None if names & {"*all", "*navigable"} else names


def _issue_json(app: JiraApp, issue: Issue, wanted: set[str] | None, adf: bool = False) -> dict[str, Any]:
    base = app.base_url
    cat_key, cat_name, colour = issue.status_category
    cat_id = {"new": 2, "indeterminate": 4, "done": 3}[cat_key]
    project_id = str(sorted(app.projects).index(issue.project) + 1) if issue.project in app.projects else "0"
    stamp = "%Y-%m-%dT%H:%M:%S.000+0000"
    fields: dict[str, Any] = {
        "summary": issue.summary,
        "description": (_adf(issue.description) if adf else issue.description) if issue.description else None,
        "labels": list(issue.labels),
        "status": {"self": f"{base}{API}/status/{issue.status}", "name": issue.status, "id": str(cat_id),
                   "description": "", "statusCategory": {"self": f"{base}{API}/statuscategory/{cat_id}",
                                                         "id": cat_id, "key": cat_key, "colorName": colour,
                                                         "name": cat_name}},
        "priority": {"self": f"{base}{API}/priority/{issue.priority}", "name": issue.priority,
                     "id": str(PRIORITIES.index(issue.priority) + 1 if issue.priority in PRIORITIES else 3)},
        "issuetype": {"self": f"{base}{API}/issuetype/{issue.issuetype}", "name": issue.issuetype,
                      "id": str(10001 + ISSUE_TYPES.index(issue.issuetype)
                                if issue.issuetype in ISSUE_TYPES else 10001), "subtask": False},
        "project": {"self": f"{base}{API}/project/{issue.project}", "id": project_id, "key": issue.project,
                    "name": issue.project},
        "created": issue.created.strftime(stamp) if issue.created else None,
        "updated": issue.updated.strftime(stamp) if issue.updated else None,
    }
    if wanted is not None:
        fields = {k: v for k, v in fields.items() if k.lower() in wanted}
    return {"expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": issue.id, "self": f"{base}{API}/issue/{issue.id}", "key": issue.key, "fields": fields}


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sandbox-page:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        prefix, offset = "", ""
    if prefix != "sandbox-page" or not offset.isdigit():
        raise QueryError("The provided next page token is invalid or expired.")
    return int(offset)


def _adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document (REST v3 rich-text fields)."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs]}


def _int_param(req: SandboxRequest, name: str, default: int) -> int:
    raw = req.q(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise QueryError(f"The value of '{name}' must be a non-negative integer.")
    return int(raw)


def _errors(status: int, messages: list[str]) -> Reply:
    return Reply({"errorMessages": messages, "errors": {}}, status=status)
