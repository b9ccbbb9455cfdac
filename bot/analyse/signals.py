"""The analysis's typed results: what changed, when, and what that points to. Pure data."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.analyse.vocabulary import ERROR_STATUSES, MetricRole
from bot.analyse.weights import MIN_PATTERN_COUNT, SPIKE_RATIO
from bot.core.models import CauseKind, Confidence

__all__ = ["CauseHypothesis", "ChangeSignal", "LogSignal", "MetricChange", "MetricRole", "RankedDown",
           "RunbookMatch", "Signals", "StatusSignal"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MetricChange(_Frozen):
    evidence_id: str
    query: str
    role: MetricRole
    upstream: str | None  # the dependency the series belongs to, when it is not the service's own
    onset: datetime
    before: float
    after: float
    unit: str | None = None
    saturated: bool = False  # a percent metric at or above SATURATION_PCT after the change

    @property
    def ratio(self) -> float | None:
        return self.after / self.before if self.before else None


class LogSignal(_Frozen):
    evidence_id: str
    quote: str | None  # safe, bounded sample for claims; None when it must not be quoted
    status: str
    count: int
    count_before: int
    first_seen: datetime | None
    is_new: bool
    spike_ratio: float | None
    suspicious: bool  # reads like instructions to the bot: counted, never quoted or trusted
    upstream: str | None  # the dependency it blames: a technology, a vendor or a host
    timeout_like: bool
    capacity_hint: Literal["pool", "memory", "threads", "disk"] | None
    host: str | None = None  # the outside host the line names (a URL's host; never its path)
    failure: Literal["dns", "certificate"] | None = None  # the name does not resolve / cert expired
    # The meaningful words of the whole line (`bot.analyse.relevance.words`), for matching a
    # change or a runbook against it: the quote is cut for a claim, and the telling word
    # ("CERTIFICATE_VERIFY_FAILED") is often past the cut. Empty when the line is suspicious.
    terms: list[str] = Field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.status.lower() in ERROR_STATUSES

    @property
    def notable(self) -> bool:
        """New or spiking with enough events to matter."""
        if self.count < MIN_PATTERN_COUNT:
            return False
        return self.is_new or (self.spike_ratio is not None and self.spike_ratio >= SPIKE_RATIO)


class ChangeSignal(_Frozen):
    """A deploy, config or batch-job event: how well its timing fits the onset, and what it
    touched against what is failing."""

    evidence_id: str
    kind: Literal["deploy", "config", "batch"]
    at: datetime
    name: str  # e.g. "v2.3.1 (9f1c2ab)" or the event title, already quoted safely
    detail: str | None  # deploy description / PR titles, quoted safely
    environment: str | None
    minutes_before_onset: float
    proximity: float  # 1.0 within 30 min before the onset ... 0.0 after it or days before
    previous_id: str | None = None  # the deploy it replaced, for "compare A against B"
    failed: bool = False
    files: list[str] = Field(default_factory=list)  # paths it changed (bounded, as GitHub listed them)
    labels: list[str] = Field(default_factory=list)  # its pull requests' labels
    # Words its files, PR titles, labels, body and description share with the symptom (the error
    # text, the failing metric, the dependencies involved): content that points at the failure.
    content_match: list[str] = Field(default_factory=list)
    inert: str | None = None  # why its content cannot explain a failure ("changed only docs: README.md")


class StatusSignal(_Frozen):
    """A vendor's status-page event (Datadog's Statuspage integration): first-class evidence that
    a provider is degraded, independent of what our own logs say."""

    evidence_id: str
    vendor: str
    at: datetime
    title: str  # quoted safely
    resolved: bool


class RunbookMatch(_Frozen):
    evidence_id: str
    title: str
    score: float
    steps: list[str]  # quoted, bounded, in page order


class CauseHypothesis(_Frozen):
    kind: CauseKind
    score: float
    confidence: Confidence
    summary: str  # short safe phrase naming the suspect
    evidence_ids: list[str]
    subject: str | None = None  # change evidence id, upstream name, metric id or capacity hint
    # Why it ranks where it does, one short safe phrase per piece of evidence for or against
    # ("landed 1 min before the onset", "its files touch PriceCalculator, named in the errors").
    # The LLM path gets these as evidence to cite; the offline brief renders them.
    reasons: list[str] = Field(default_factory=list)
    at: datetime | None = None  # when the suspect began (a change's time), never after the onset


class RankedDown(_Frozen):
    """A suspect set aside, and why: said in the brief so a reader need not wonder."""

    evidence_id: str
    kind: CauseKind
    name: str  # e.g. "deploy v2.4.2 (a1b2c3d)", already quoted safely
    reason: str  # e.g. "changed only footer copy", "landed 2 min after the errors began"


class Signals(_Frozen):
    service: str
    onset: datetime
    onset_basis: Literal["metric", "log", "alert"]
    onset_evidence: list[str]
    metric_changes: list[MetricChange]
    metrics_checked: list[str]
    symptom: MetricChange | None
    log_signals: list[LogSignal]
    changes: list[ChangeSignal]
    saturated_metrics: list[str]
    runbook: RunbookMatch | None
    hypotheses: list[CauseHypothesis] = Field(min_length=1)
    suspicious_evidence: list[str] = Field(default_factory=list)
    status_events: list[StatusSignal] = Field(default_factory=list)
    ranked_down: list[RankedDown] = Field(default_factory=list)

    @property
    def top(self) -> CauseHypothesis:
        return self.hypotheses[0]

    def notable_errors(self) -> list[LogSignal]:
        """New or spiking error patterns that may be quoted, most events first."""
        return [s for s in self.log_signals if s.notable and s.is_error and not s.suspicious]

