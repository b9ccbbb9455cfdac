"""Domain models: what flows from a trigger to a published brief.

Everything here is pure data (pydantic v2). Connectors produce `Evidence` and `SourceGap`,
analysis and drafting produce a `Brief` whose every `Claim` cites evidence ids, and the Slack
and approval rooms consume them.

Evidence `data` conventions (what analysis may rely on, per `kind`):
- ``monitor``: ``{"monitor_id": int, "query": str, "status": str, "tags": [str]}``
- ``dashboard``: ``{"dashboard_id": str, "widgets": [{"title": str, "query": str, "widget_type": str,
  "formula"?: str}], "other_sources": {data source: count}, "timeseries_widgets": int}``
- ``metric``: ``{"query": str, "points": [[epoch_seconds, value], ...], "unit": str|None}``, plus
  ``"group"`` and ``"groups"`` (how many the query answered) for one group of a grouped query
- ``log_pattern``: ``{"template": str, "sample": str, "count": int, "status": str,
  "first_seen": iso, "last_seen": iso, "count_before": int}`` (count_before: in the
  baseline window before the alert window, so "new" and "spiking" are computable)
- ``event``: ``{"event_id": str, "tags": [str], "source": str|None}``
- ``deploy``: ``{"deployment_id": int, "sha": str, "ref": str, "environment": str,
  "creator": str|None, "status": str|None, "description": str|None,
  "pull_requests": [{"number": int, "title": str}]}``
- ``runbook``: ``{"page_id": str, "space": str|None, "labels": [str], "score": float}``
- ``incident`` / ``past_incident``: ``{"incident_id": str, "status": str, "urgency": str}``
- ``jira_issue``: ``{"key": str, "status": str}``

Evidence `ref` conventions (how evals map a citation back to a scenario world item):
deploy ``{"sha", "deployment_id"}``; runbook ``{"page_id"}``; monitor ``{"monitor_id"}``;
log_pattern ``{"sample"}`` (one raw message of the pattern); metric ``{"query"}``;
event ``{"event_id", "title"}``; dashboard ``{"dashboard_id"}``; jira_issue ``{"key"}``;
incident / past_incident ``{"incident_id"}``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from bot.core.redaction.clip import clip

EXCERPT_MAX_CHARS = 600


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(StrEnum):
    """An outside system; also the unit a `SourceGap` is reported in."""

    DATADOG = "datadog"
    GITHUB = "github"
    CONFLUENCE = "confluence"
    PAGERDUTY = "pagerduty"
    JIRA = "jira"
    SLACK = "slack"
    LLM = "llm"


class EvidenceKind(StrEnum):
    MONITOR = "monitor"
    DASHBOARD = "dashboard"
    METRIC = "metric"
    LOG_PATTERN = "log_pattern"
    EVENT = "event"
    DEPLOY = "deploy"
    RUNBOOK = "runbook"
    INCIDENT = "incident"
    PAST_INCIDENT = "past_incident"
    JIRA_ISSUE = "jira_issue"


class CauseKind(StrEnum):
    DEPLOY = "deploy"
    CONFIG = "config"
    DEPENDENCY = "dependency"
    CAPACITY = "capacity"
    TRAFFIC = "traffic"
    UNKNOWN = "unknown"


class Alert(Frozen):
    """One request for a brief, whatever triggered it."""

    via: Literal["pagerduty", "slack_mention", "cli"]
    title: str
    service: str
    triggered_at: datetime
    incident_id: str | None = None
    urgency: Literal["high", "low"] = "high"
    details: dict[str, Any] = Field(default_factory=dict)
    mention_text: str | None = None
    requested_by: str | None = None
    # The Slack team (T...) the request came from: whose monthly model budget pays for the brief.
    # None for a PagerDuty trigger: the configured default workspace (`llm.workspace`) pays.
    workspace: str | None = None


class DatadogRef(Frozen):
    service: str
    env: str = "prod"
    dashboards: list[str] = Field(default_factory=list)


class ServiceEntry(Frozen):
    """A service catalog entry: where each source keeps this service's data."""

    name: str
    team: str | None = None
    slack_channel: str | None = None
    datadog: DatadogRef | None = None
    github_repo: str | None = None
    confluence_space: str | None = None
    confluence_labels: list[str] = Field(default_factory=list)
    jira_project: str | None = None
    pagerduty_service_id: str | None = None


class ReferenceCheck(Frozen):
    """Whether one catalog reference (a dashboard id, a repository, a space, a project) resolves
    at its source, as `doctor` checks it. A source that cannot answer raises instead: only the
    source's own answer may call a reference missing."""

    # empty: the source answered, with nothing there (a space search that finds no pages: a
    # space that does not exist, that the token cannot see, or that has no pages).
    state: Literal["found", "missing", "empty"]
    detail: str = ""  # what the source said: a title, "HTTP 404: not found"


class TimeWindow(Frozen):
    """The span evidence is gathered for. ``baseline_start..start`` is "before" (what normal
    looked like), ``start..end`` is the incident window around ``alert_at``."""

    alert_at: datetime
    start: datetime
    end: datetime
    baseline_start: datetime


class Provenance(Frozen):
    """Where a piece of evidence came from: enough to replay or audit the fetch."""

    system: Source
    tool: str
    request: str  # "METHOD path" as sent, query string included when it matters
    fetched_at: datetime


def evidence_id(kind: EvidenceKind | str, native_ref: str) -> str:
    """A stable, short, model-friendly id: same source record -> same id, run after run."""
    digest = hashlib.sha1(f"{kind}|{native_ref}".encode(), usedforsecurity=False).hexdigest()[:6]
    return f"{EvidenceKind(kind).value.replace('_', '-')}-{digest}"


class Evidence(Frozen):
    """One fact from one source, quotable and clickable. Its text is untrusted data."""

    id: str
    kind: EvidenceKind
    source: Source
    title: str
    excerpt: str
    timestamp: datetime | None = None
    link: str | None = None
    provenance: Provenance
    # The real-world reference (sha, page id, monitor id, log sample, metric query...)
    # so evals can map a citation back to what the world served.
    ref: dict[str, str] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("excerpt")
    @classmethod
    def _bound_excerpt(cls, value: str) -> str:
        if len(value) <= EXCERPT_MAX_CHARS:
            return value
        # Masked, then cut (`clip`): a secret cut in half here would no longer match its pattern
        # when the tool runner masks the evidence (a Slack webhook URL cut after "/services").
        return clip(value, EXCERPT_MAX_CHARS, one_line=False)


class SourceGap(Frozen):
    """A source (or one tool of it) that could not be read: shown in the brief, never hidden."""

    source: Source
    tool: str | None = None
    reason: str


class Claim(Frozen):
    text: str
    citations: list[str] = Field(default_factory=list)


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class LikelyCause(Frozen):
    kind: CauseKind
    claim: Claim
    confidence: Confidence


class TimelineEntry(Frozen):
    at: datetime
    claim: Claim


class TicketProposal(Frozen):
    project: str
    summary: str
    description: str
    priority: Literal["Highest", "High", "Medium", "Low"] = "High"
    citations: list[str] = Field(default_factory=list)


class DraftInfo(Frozen):
    """How the brief was drafted: recorded on every brief so a reader can judge it."""

    drafter: Literal["offline", "llm"] = "offline"
    model: str | None = None
    prompt_version: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    fallback_reason: str | None = None
    cache_hit: bool = False


class Brief(Frozen):
    headline: Claim
    impact: Claim
    likely_causes: list[LikelyCause] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    next_actions: list[Claim] = Field(default_factory=list)
    gaps: list[SourceGap] = Field(default_factory=list)
    ticket: TicketProposal | None = None
    draft: DraftInfo = Field(default_factory=DraftInfo)
    notes: list[str] = Field(default_factory=list)  # validation and fallback notes

    def claims(self) -> list[Claim]:
        """Every claim in reading order."""
        out = [self.headline, self.impact]
        out += [cause.claim for cause in self.likely_causes]
        out += [entry.claim for entry in self.timeline]
        out += list(self.next_actions)
        return out

    def cited_ids(self) -> list[str]:
        """Evidence ids in order of first citation (the numbering a reader sees)."""
        seen: dict[str, None] = {}
        for claim in self.claims():
            for cid in claim.citations:
                seen.setdefault(cid, None)
        if self.ticket:
            for cid in self.ticket.citations:
                seen.setdefault(cid, None)
        return list(seen)

    @property
    def top_cause(self) -> LikelyCause | None:
        return self.likely_causes[0] if self.likely_causes else None


class BriefResult(Frozen):
    """A brief with the evidence it rests on: the CLI's JSON shape and the store's unit."""

    brief: Brief
    evidence: list[Evidence]
    gaps: list[SourceGap]
    # Sources still out when this version was drafted (an early version posted at the policy's
    # `timing.first_post_s`); empty on a complete brief. A later version replaces it in place.
    pending: list[Source] = Field(default_factory=list)
    # What this version changed against the one it replaces ("GitHub answered: …; top cause
    # unchanged"), said on the card; None on a first version.
    changes: str | None = None

    @model_serializer(mode="wrap")
    def _omit_progress_when_unused(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A complete first version (every CLI draft, most briefs) keeps the documented shape
        # {brief, evidence, gaps}; `pending` and `changes` appear only when they say something.
        data: dict[str, Any] = handler(self)
        if not self.pending:
            data.pop("pending", None)
        if self.changes is None:
            data.pop("changes", None)
        return data

    @property
    def final(self) -> bool:
        return not self.pending
