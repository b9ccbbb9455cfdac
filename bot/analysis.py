"""Deterministic, model-free signals: what changed, when, and what that points to.

`analyse(alert, service, window, evidence)` reads the evidence conventions documented in
`bot.models` and returns typed `Signals`:

- the incident **onset**: the earliest metric level change or new error pattern inside the
  incident window, else the alert time;
- metric **level changes** (a robust single change-point per series, see
  `detect_level_change`), log patterns that are **new** or **spiking**, **deploys and config
  events** ranked by how shortly they landed before the onset, **dependency** and
  **capacity/traffic** signals, the best-matching **runbook**;
- ranked `CauseHypothesis` entries. The first one is the answer; it is ``unknown`` whenever
  no hypothesis reaches medium confidence, so a deploy from days ago or a flag flipped hours
  before never becomes "the cause" for want of anything better.

Everything here is pure (no I/O, no clock). Evidence text is untrusted: labels meant for
claims go through `quote_untrusted`, and text that reads like instructions to the bot is
never quoted and never used to name a cause.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from statistics import median
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.models import Alert, CauseKind, Confidence, Evidence, EvidenceKind, ServiceEntry, TimeWindow


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------------------------------------
# Quoting untrusted text
# ---------------------------------------------------------------------------------------------

_INSTRUCTION_LIKE = re.compile(
    r"ignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier)\s+(?:instructions|prompts?|messages?)"
    r"|disregard\s+(?:all\s+|the\s+)?(?:previous|prior|above)"
    r"|^\W*(?:system|assistant|developer)\s*:"
    r"|\byou\s+are\s+now\b|\bnew\s+instructions\b"
    r"|\bsay\s+(?:that\s+)?the\s+(?:root\s+)?cause\b"
    r"|\b(?:file|create|open)\s+an?\s+(?:jira\s+)?(?:ticket|issue)\b"
    r"|<!(?:channel|here|everyone)\b|@(?:channel|here|everyone)\b",
    re.IGNORECASE,
)
_URL = re.compile(r"<?https?://[^\s<>|]+(?:\|[^>]*)?>?", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(token|password|passwd|pwd|secret|api[_-]?key|authorization)(\s*[=:]\s*)\S+")
_SECRETS = (
    re.compile(r"\b(?:sk|pk|rk)[-_](?:live|test)[-_][A-Za-z0-9]{8,}\b"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{8,}"),
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+"),
    re.compile(r"\b(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}\b"),
)


_ARROWS = (("<->", "↔"), ("->", "→"), ("=>", "⇒"), ("<-", "←"), (">=", "≥"), ("<=", "≤"))


def looks_like_instructions(text: str) -> bool:
    """True for text that addresses the bot (prompt injection, Slack broadcasts)."""
    return bool(_INSTRUCTION_LIKE.search(text))


def quote_untrusted(text: str | None, limit: int = 100, *, keep_code: bool = False) -> str | None:
    """One bounded line of evidence text that is safe to put inside a claim, or None.

    None when the text addresses the bot (it is never quoted). Otherwise: one line, URLs,
    e-mail addresses and secret-looking tokens masked, no angle brackets (Slack control
    sequences), backticks kept only for balanced code spans when ``keep_code``, and at most
    ``limit`` characters.
    """
    if not text or looks_like_instructions(text):
        return None
    line = " ".join(text.split())
    line = _URL.sub("[link]", line)
    line = _SECRET_ASSIGNMENT.sub(r"\1\2[redacted]", line)
    for pattern in _SECRETS:
        line = pattern.sub("[redacted]", line)
    line = _EMAIL.sub("[email]", line)
    # No raw angle brackets (Slack control sequences such as <!channel>), but keep what they
    # meant: arrows stay arrows and placeholders like `<previous sha>` stay visibly placeholders.
    for raw, safe in _ARROWS:
        line = line.replace(raw, safe)
    line = line.replace("<", "‹").replace(">", "›")
    if not keep_code or line.count("`") % 2:
        line = line.replace("`", "'")
    line = line.strip()
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
        if line.count("`") % 2:
            line = line.replace("`", "'")
    return line or None


# ---------------------------------------------------------------------------------------------
# Change-point detection
# ---------------------------------------------------------------------------------------------

MIN_SEGMENT = 4  # points on each side of a change; with the 3/4 persistence rule, two spikes are not a step
_PERSISTENCE = 0.75
_MIN_SIGMAS = 4.0
_MIN_RELATIVE = 0.2


class LevelChange(_Frozen):
    """A step in a series: ``index`` is the first point at the new level."""

    index: int
    at: datetime
    before: float
    after: float

    @property
    def ratio(self) -> float | None:
        return self.after / self.before if self.before else None


def _prefix_l1_costs(values: Sequence[float]) -> list[float]:
    """costs[i] = sum of |x - median| over values[:i], for every i, in O(n log n)."""
    lower: list[float] = []  # max-heap (negated): the smaller half, holds the median
    upper: list[float] = []
    sum_lower = sum_upper = 0.0
    costs = [0.0]
    for x in values:
        if not lower or x <= -lower[0]:
            heapq.heappush(lower, -x)
            sum_lower += x
        else:
            heapq.heappush(upper, x)
            sum_upper += x
        if len(lower) > len(upper) + 1:
            moved = -heapq.heappop(lower)
            sum_lower -= moved
            heapq.heappush(upper, moved)
            sum_upper += moved
        elif len(upper) > len(lower):
            moved = heapq.heappop(upper)
            sum_upper -= moved
            heapq.heappush(lower, -moved)
            sum_lower += moved
        mid = -lower[0]
        costs.append((mid * len(lower) - sum_lower) + (sum_upper - mid * len(upper)))
    return costs


def _significant(before: Sequence[float], after: Sequence[float]) -> tuple[float, float] | None:
    b, a = median(before), median(after)
    delta = abs(a - b)
    residuals = [abs(x - b) for x in before] + [abs(x - a) for x in after]
    sigma = 1.4826 * median(residuals)
    if delta <= _MIN_SIGMAS * sigma or delta < _MIN_RELATIVE * max(abs(a), abs(b)) or delta == 0:
        return None
    mid = (a + b) / 2
    def on_side(xs: Sequence[float], level: float) -> float:
        return sum(1 for x in xs if (x > mid) == (level > mid)) / len(xs)
    if on_side(after, a) < _PERSISTENCE or on_side(before, b) < _PERSISTENCE:
        return None
    return b, a


def detect_level_change(points: Sequence[tuple[float, float]], *,
                        min_segment: int = MIN_SEGMENT) -> LevelChange | None:
    """The best single step in a time series, or None when the series has no clear step.

    ``points`` are ``(epoch_seconds, value)``. The split minimises the absolute deviation from
    each side's median (so isolated spikes barely move it); the step counts only when the
    medians differ by more than 4 robust sigmas (MAD) and 20%, and at least 3/4 of the points
    on each side sit on their side of the midpoint.
    """
    ordered = sorted(points)
    values = [v for _, v in ordered]
    n = len(values)
    if n < 2 * min_segment:
        return None
    prefix = _prefix_l1_costs(values)
    suffix = _prefix_l1_costs(values[::-1])
    best_k, best_cost = -1, math.inf
    for k in range(min_segment, n - min_segment + 1):
        cost = prefix[k] + suffix[n - k]
        if cost < best_cost - 1e-12:
            best_k, best_cost = k, cost
    levels = _significant(values[:best_k], values[best_k:])
    if levels is None:
        return None
    return LevelChange(index=best_k, at=datetime.fromtimestamp(ordered[best_k][0], UTC),
                       before=levels[0], after=levels[1])


# ---------------------------------------------------------------------------------------------
# Typed signals
# ---------------------------------------------------------------------------------------------

class MetricRole(StrEnum):
    ERRORS = "errors"
    LATENCY = "latency"
    TRAFFIC = "traffic"
    CPU = "cpu"
    MEMORY = "memory"
    POOL = "pool"
    OTHER = "other"


class MetricChange(_Frozen):
    evidence_id: str
    query: str
    role: MetricRole
    upstream: str | None  # the dependency the series belongs to, when it is not the service's own
    onset: datetime
    before: float
    after: float
    unit: str | None = None
    saturated: bool = False  # a percent metric at or above 90% after the change

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
    upstream: str | None
    timeout_like: bool
    capacity_hint: Literal["pool", "memory", "threads"] | None

    @property
    def is_error(self) -> bool:
        return self.status.lower() in _ERROR_STATUSES

    @property
    def notable(self) -> bool:
        """New or spiking with enough events to matter."""
        if self.count < MIN_PATTERN_COUNT:
            return False
        return self.is_new or (self.spike_ratio is not None and self.spike_ratio >= SPIKE_RATIO)


class ChangeSignal(_Frozen):
    """A deploy or config event and how well its timing fits the onset."""

    evidence_id: str
    kind: Literal["deploy", "config"]
    at: datetime
    name: str  # e.g. "v2.3.1 (9f1c2ab)" or the event title, already quoted safely
    detail: str | None  # deploy description / PR titles, quoted safely
    environment: str | None
    minutes_before_onset: float
    proximity: float  # 1.0 within 30 min before the onset ... 0.0 after it or days before
    previous_id: str | None = None  # the deploy it replaced, for "compare A against B"
    failed: bool = False


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

    @property
    def top(self) -> CauseHypothesis:
        return self.hypotheses[0]

    def notable_errors(self) -> list[LogSignal]:
        """New or spiking error patterns that may be quoted, most events first."""
        return [s for s in self.log_signals if s.notable and s.is_error and not s.suspicious]


# ---------------------------------------------------------------------------------------------
# Classification tables
# ---------------------------------------------------------------------------------------------

MIN_PATTERN_COUNT = 3
SPIKE_RATIO = 3.0
SATURATION_PCT = 90.0
_ERROR_STATUSES = {"error", "critical", "emergency", "alert", "fatal"}
_UPSTREAMS: tuple[tuple[str, str], ...] = (
    (r"elastic(?:search)?", "Elasticsearch"), (r"opensearch", "OpenSearch"),
    (r"postgres|pgbouncer|psql", "PostgreSQL"), (r"mysql|mariadb", "MySQL"), (r"redis", "Redis"),
    (r"memcache", "Memcached"), (r"kafka", "Kafka"), (r"rabbitmq|amqp", "RabbitMQ"),
    (r"cassandra", "Cassandra"), (r"mongo", "MongoDB"), (r"dynamodb", "DynamoDB"),
    (r"zookeeper", "ZooKeeper"), (r"\betcd\b", "etcd"), (r"\bs3\b", "S3"), (r"\bsqs\b", "SQS"),
)
_PORTS = {"5432": "PostgreSQL", "6379": "Redis", "9200": "Elasticsearch", "9300": "Elasticsearch",
          "9092": "Kafka", "3306": "MySQL", "27017": "MongoDB", "11211": "Memcached", "5672": "RabbitMQ"}
_TIMEOUT_LIKE = re.compile(
    r"timed?\s?out|timeout|connection refused|econnrefused|connection reset|no route to host"
    r"|unavailable|circuit\s*(?:breaker)?\s*(?:is\s+)?open|deadline exceeded|upstream", re.IGNORECASE)
_POOL = re.compile(r"pool.{0,40}(?:exhausted|not available|timed? ?out|timeout|full)"
                   r"|connection is not available|too many connections|no available connections?",
                   re.IGNORECASE)
_MEMORY = re.compile(r"outofmemory|out of memory|oomkill|memory limit", re.IGNORECASE)
_THREADS = re.compile(r"thread pool.{0,20}(?:exhausted|full|rejected)|rejectedexecution", re.IGNORECASE)
_CONFIG_SOURCES = {"launchdarkly", "split", "optimizely", "flagsmith", "unleash", "configcat", "terraform",
                   "consul", "kubernetes", "helm", "argocd", "ansible", "chef", "puppet", "config",
                   "spinnaker"}
_CONFIG_WORDS = re.compile(r"\b(?:config(?:uration)?|configmap|feature[ -]?flag|flag|toggle|terraform"
                           r"|setting|parameter|env(?:ironment)? var(?:iable)?s?|secret rotated|rollout)\b",
                           re.IGNORECASE)
_DEPLOY_WORDS = re.compile(r"\b(?:deploy(?:ed|ment)?|release[sd]?|rolled out|rollback)\b", re.IGNORECASE)
_PROD_ENVS = {"production", "prod", "live", "prd"}
_ROLE_WORDS: tuple[tuple[MetricRole, re.Pattern[str]], ...] = (
    (MetricRole.ERRORS, re.compile(r"error|5xx|exception|fail", re.IGNORECASE)),
    (MetricRole.LATENCY, re.compile(r"duration|latency|response_time|\bp(?:50|75|90|95|99)\b", re.I)),
    (MetricRole.POOL, re.compile(r"pool|connections?\.(?:active|used|pending|waiting)", re.IGNORECASE)),
    (MetricRole.CPU, re.compile(r"cpu", re.IGNORECASE)),
    (MetricRole.MEMORY, re.compile(r"mem(?:ory)?\b|\.mem\.|rss|heap", re.IGNORECASE)),
    (MetricRole.TRAFFIC, re.compile(r"hits|requests?\b|request\.count|throughput|\brps\b|\bqps\b", re.I)),
)


def find_upstream(text: str) -> str | None:
    for pattern, name in _UPSTREAMS:
        if re.search(pattern, text, re.IGNORECASE):
            return name
    port = re.search(r":(\d{4,5})\b", text)
    return _PORTS.get(port.group(1)) if port else None


def metric_role(query: str) -> MetricRole:
    name = query.split("{", 1)[0]
    for role, pattern in _ROLE_WORDS:
        if pattern.search(name):
            return role
    return MetricRole.OTHER


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if isinstance(value, str):
        try:
            return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _points(raw: Any) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, list | tuple) or len(item) < 2:
            continue
        t, v = item[0], item[1]
        if not isinstance(t, int | float) or not isinstance(v, int | float) or isinstance(v, bool):
            continue
        if math.isnan(v) or math.isinf(v):
            continue
        out.append((t / 1000 if t > 1e11 else float(t), float(v)))
    return sorted(out)


def _percent_like(query: str, unit: str | None) -> bool:
    return (unit or "").lower() in {"percent", "%", "pct"} or bool(
        re.search(r"percent|\bpct\b|utili[sz]ation|system\.cpu\.(?:user|system|total)", query, re.IGNORECASE))


# ---------------------------------------------------------------------------------------------
# Per-kind readers
# ---------------------------------------------------------------------------------------------

def _metric_signals(evidence: list[Evidence], window: TimeWindow) -> tuple[list[MetricChange], list[str]]:
    """Significant level changes in the incident window, and saturated percent metrics."""
    changes: list[MetricChange] = []
    saturated: list[str] = []
    horizon = window.alert_at + timedelta(minutes=15)  # later moves are consequences or recovery
    for ev in evidence:
        if ev.kind != EvidenceKind.METRIC:
            continue
        query = str(ev.data.get("query") or ev.ref.get("query") or ev.title)
        unit = ev.data.get("unit") if isinstance(ev.data.get("unit"), str) else None
        points = [p for p in _points(ev.data.get("points")) if p[0] <= horizon.timestamp()]
        percent = _percent_like(query, unit)
        change = _change_in_window(points, window)
        if percent and len(points) >= 3 and median(v for _, v in points[-5:]) >= SATURATION_PCT:
            saturated.append(ev.id)
        if change is None:
            continue
        changes.append(MetricChange(
            evidence_id=ev.id, query=query, role=metric_role(query), upstream=_metric_upstream(query),
            onset=change.at, before=change.before, after=change.after, unit=unit,
            saturated=percent and change.after >= SATURATION_PCT))
    changes.sort(key=lambda c: (c.onset, c.evidence_id))
    return changes, saturated


def _metric_upstream(query: str) -> str | None:
    """The dependency a series belongs to, judged from its metric name (not its service tag)."""
    return find_upstream(query.split("{", 1)[0])


def _change_in_window(points: list[tuple[float, float]], window: TimeWindow) -> LevelChange | None:
    """The step that starts the incident: re-search after any older step (binary segmentation)."""
    start = 0
    for _ in range(3):
        change = detect_level_change(points[start:])
        if change is None:
            return None
        if change.at >= window.start - timedelta(minutes=5):
            return change
        start += change.index
    return None


def _log_signals(evidence: list[Evidence], window: TimeWindow) -> list[LogSignal]:
    window_min = max((window.end - window.start).total_seconds() / 60, 1.0)
    baseline_min = max((window.start - window.baseline_start).total_seconds() / 60, 1.0)
    out: list[LogSignal] = []
    for ev in evidence:
        if ev.kind != EvidenceKind.LOG_PATTERN:
            continue
        sample = str(ev.data.get("sample") or ev.ref.get("sample") or "")
        template = str(ev.data.get("template") or ev.title or "")
        text = f"{template}\n{sample}"
        suspicious = looks_like_instructions(text)
        count, before = _as_int(ev.data.get("count")), _as_int(ev.data.get("count_before"))
        spike = (count / window_min) / (before / baseline_min) if before > 0 else None
        hint: Literal["pool", "memory", "threads"] | None = (
            "pool" if _POOL.search(text) else "memory" if _MEMORY.search(text)
            else "threads" if _THREADS.search(text) else None)
        out.append(LogSignal(
            evidence_id=ev.id, quote=None if suspicious else quote_untrusted(sample or template, 110),
            status=str(ev.data.get("status") or "info"), count=count, count_before=before,
            first_seen=_parse_time(ev.data.get("first_seen")) or (
                _aware(ev.timestamp) if ev.timestamp else None),
            is_new=before == 0 and count > 0, spike_ratio=spike, suspicious=suspicious,
            upstream=None if suspicious else find_upstream(text),
            timeout_like=bool(_TIMEOUT_LIKE.search(text)), capacity_hint=None if suspicious else hint))
    out.sort(key=lambda s: (not s.notable, not s.is_error, -s.count, s.evidence_id))
    return out


def _proximity(minutes_before: float) -> float:
    """How strongly a change's timing suggests it caused the onset."""
    if minutes_before < -2:  # landed after the onset (2 min of slack for metric granularity)
        return 0.0
    if minutes_before <= 30:
        return 1.0
    if minutes_before <= 120:
        return 0.5
    if minutes_before <= 360:
        return 0.25
    if minutes_before <= 24 * 60:
        return 0.1
    return 0.0


def _event_kind(ev: Evidence) -> Literal["deploy", "config"] | None:
    tags = [str(t).lower() for t in ev.data.get("tags") or []]
    source = str(ev.data.get("source") or "").lower()
    sources = {source} | {t.split(":", 1)[1] for t in tags if t.startswith("source:")}
    if sources & _CONFIG_SOURCES or any("config" in t or "feature_flag" in t for t in tags):
        return "config"
    if _CONFIG_WORDS.search(ev.title):
        return "config"
    if _DEPLOY_WORDS.search(ev.title) or "deploy" in sources:
        return "deploy"
    return None


def _change_signals(evidence: list[Evidence], onset: datetime) -> list[ChangeSignal]:
    deploys = sorted((ev for ev in evidence if ev.kind == EvidenceKind.DEPLOY and ev.timestamp),
                     key=lambda ev: (_aware(ev.timestamp or onset), ev.id))
    out: list[ChangeSignal] = []
    for i, ev in enumerate(deploys):
        at = _aware(ev.timestamp or onset)
        env = str(ev.data.get("environment") or "") or None
        if env and env.lower() not in _PROD_ENVS:
            continue  # a staging deploy does not break production
        sha = str(ev.data.get("sha") or ev.ref.get("sha") or "")[:7]
        ref = quote_untrusted(str(ev.data.get("ref") or ""), 40)
        name = f"{ref} ({sha})" if ref and sha else ref or sha or (quote_untrusted(ev.title, 60) or ev.id)
        # The version to go back to is the last one that went out: a failed deployment leaves
        # the version before it serving, so it is never the rollback target.
        same_env = [p for p in deploys[:i] if p.data.get("environment") == ev.data.get("environment")
                    and not _deploy_failed(p)]
        previous = same_env[-1] if same_env else None
        out.append(_change(ev, "deploy", at, onset, name, _deploy_detail(ev), env,
                           previous.id if previous else None, _deploy_failed(ev)))
    for ev in evidence:
        if ev.kind != EvidenceKind.EVENT or ev.timestamp is None:
            continue
        kind = _event_kind(ev)
        title = quote_untrusted(_event_title(ev, kind), 90)
        if kind is None or title is None:
            continue
        out.append(_change(ev, kind, _aware(ev.timestamp), onset, title, None, None, None, False))
    out.sort(key=lambda c: (-c.proximity, abs(c.minutes_before_onset), c.evidence_id))
    return out


def _deploy_failed(ev: Evidence) -> bool:
    return str(ev.data.get("status") or "").lower() in {"failure", "error"}


_KIND_PREFIX = re.compile(r"^\s*(?:event|config(?:uration)? change|deploy(?:ment)?)\s*:\s*", re.IGNORECASE)


def _event_title(ev: Evidence, kind: Literal["deploy", "config"] | None) -> str:
    """The event's own title without the labels the connector or the emitter put in front
    ("Event: Config change: pool max 50 -> 5" reads "pool max 50 -> 5" next to "config change")."""
    title = str(ev.ref.get("title") or ev.title)
    for _ in range(2):
        stripped = _KIND_PREFIX.sub("", title)
        if stripped == title or not stripped.strip():
            break
        title = stripped
    return title


def _change(ev: Evidence, kind: Literal["deploy", "config"], at: datetime, onset: datetime, name: str,
            detail: str | None, env: str | None, previous: str | None, failed: bool) -> ChangeSignal:
    minutes = (onset - at).total_seconds() / 60
    return ChangeSignal(evidence_id=ev.id, kind=kind, at=at, name=name, detail=detail, environment=env,
                        minutes_before_onset=minutes, proximity=_proximity(minutes), previous_id=previous,
                        failed=failed)


def _deploy_detail(ev: Evidence) -> str | None:
    parts: list[str] = []
    description = quote_untrusted(str(ev.data.get("description") or ""), 80)
    if description:
        parts.append(f"“{description}”")
    for pr in (ev.data.get("pull_requests") or [])[:2]:
        if not isinstance(pr, dict):
            continue
        title = quote_untrusted(str(pr.get("title") or ""), 70)
        number = _as_int(pr.get("number"))
        if title and title.lower() != (description or "").lower():
            parts.append(f"PR #{number} “{title}”" if number else f"PR “{title}”")
        elif number:
            parts.append(f"PR #{number}")
    return ", ".join(parts) or None


_STOPWORDS = {"the", "and", "for", "with", "from", "this", "that", "rate", "above", "below", "prod", "api"}


def _tokens(text: str) -> set[str]:
    return {t for t in re.findall(r"[a-z0-9]{3,}", text.lower()) if t not in _STOPWORDS}


_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+")


def _list_items(text: str) -> list[str]:
    """Items of a numbered or bulleted list, one per marker at the start of a line; a line
    without a marker continues the item above it. Numbers inside a step ("GET 20.") are text."""
    items: list[str] = []
    for line in text.splitlines():
        if _LIST_ITEM.match(line):
            items.append(_LIST_ITEM.sub("", line, count=1))
        elif items and line.strip():
            items[-1] += " " + line.strip()
    return items


def _inline_numbered(flat: str) -> list[str]:
    """Items of a list flattened onto one line ("1. a 2. b"): markers must count 1, 2, 3..."""
    cuts: list[tuple[int, int]] = []
    for match in re.finditer(r"(?:^|(?<=\s))(\d{1,2})[.)]\s+", flat):
        if int(match.group(1)) == len(cuts) + 1:
            cuts.append((match.start(), match.end()))
    if not cuts:
        return []
    ends = [start for start, _ in cuts[1:]] + [len(flat)]
    return [flat[body:end].strip() for (_, body), end in zip(cuts, ends, strict=True)]


def runbook_steps(text: str, limit: int = 6) -> list[str]:
    """Steps of a runbook body: numbered or bulleted items, else its sentences. Quoted safely."""
    parts = _list_items(text)
    if len(parts) < 2:
        parts = _inline_numbered(" ".join(text.split()))
    if len(parts) < 2:
        flat = " ".join(text.split())
        parts = re.split(r"(?<=[.!?])\s+", flat)
    steps: list[str] = []
    for part in parts:
        quoted = quote_untrusted(part.strip(), 140, keep_code=True)
        if quoted and len(quoted) > 3:
            steps.append(quoted)
    return steps[:limit]


def _best_runbook(evidence: list[Evidence], alert: Alert, service: ServiceEntry) -> RunbookMatch | None:
    wanted = _tokens(f"{alert.title} {service.name}")
    best: RunbookMatch | None = None
    for ev in evidence:
        if ev.kind != EvidenceKind.RUNBOOK:
            continue
        labels = [str(label).lower() for label in ev.data.get("labels") or []]
        title = ev.title.lower()
        score = 0.0
        score += 1.0 if service.name.lower() in labels else 0.0
        score += 1.0 if service.name.lower() in title else 0.0
        score += 0.5 if {"runbook", "playbook"} & set(labels) or "runbook" in title else 0.0
        overlap = len(wanted & _tokens(f"{ev.title} {ev.excerpt}")) / max(len(wanted), 1)
        score += 2.0 * overlap
        raw = ev.data.get("score")
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0:
            score += 0.5 * min(float(raw), 1.0)
        if score < 1.0:
            continue
        match = RunbookMatch(evidence_id=ev.id, title=quote_untrusted(ev.title, 80) or "runbook",
                             score=round(score, 3), steps=runbook_steps(ev.excerpt))
        if best is None or (match.score, -len(match.evidence_id)) > (best.score, -len(best.evidence_id)):
            best = match
    return best


# ---------------------------------------------------------------------------------------------
# Onset and symptom
# ---------------------------------------------------------------------------------------------

def _onset(window: TimeWindow, changes: list[MetricChange],
           logs: list[LogSignal]) -> tuple[datetime, Literal["metric", "log", "alert"], list[str]]:
    lo, hi = window.start - timedelta(minutes=5), window.alert_at + timedelta(minutes=5)
    candidates: list[tuple[datetime, Literal["metric", "log"], str]] = [
        (c.onset, "metric", c.evidence_id) for c in changes if lo <= c.onset <= hi]
    # Only NEW patterns date the onset: a spiking pattern's first_seen is just its first
    # occurrence in the window, which may be background noise from long before the spike.
    candidates += [(s.first_seen, "log", s.evidence_id) for s in logs
                   if s.notable and s.is_new and s.is_error and not s.suspicious
                   and s.first_seen and lo <= s.first_seen <= hi]
    if not candidates:
        candidates = [(s.first_seen, "log", s.evidence_id) for s in logs
                      if s.notable and s.is_error and not s.suspicious
                      and s.first_seen and lo <= s.first_seen <= hi]
    if not candidates:
        return window.alert_at, "alert", []
    at, basis, _ = min(candidates, key=lambda c: (c[0], c[1], c[2]))
    ids = [cid for t, _b, cid in sorted(candidates) if abs((t - at).total_seconds()) <= 60]
    return at, basis, ids


def _symptom(alert: Alert, evidence: list[Evidence], changes: list[MetricChange]) -> MetricChange | None:
    own = [c for c in changes if c.upstream is None]
    monitor_queries = [str(ev.data.get("query") or "") for ev in evidence if ev.kind == EvidenceKind.MONITOR]
    for change in own:
        if any(change.query and change.query in q for q in monitor_queries):
            return change
    title = alert.title.lower()
    wanted = (MetricRole.ERRORS if re.search(r"5xx|error|exception|fail", title)
              else MetricRole.LATENCY if re.search(r"latency|slow|p9\d|duration|timeout", title)
              else MetricRole.TRAFFIC if re.search(r"traffic|requests|throughput", title) else None)
    for change in own:
        if change.role == wanted:
            return change
    ranked = sorted(own, key=lambda c: (c.role not in (MetricRole.ERRORS, MetricRole.LATENCY),
                                        -abs(math.log(c.ratio)) if c.ratio and c.ratio > 0 else -99.0))
    return ranked[0] if ranked else None


# ---------------------------------------------------------------------------------------------
# Hypotheses
# ---------------------------------------------------------------------------------------------

CONFIDENT = 0.5  # the top hypothesis needs at least medium confidence, else the answer is unknown
LISTED = 0.3


def confidence_for(score: float) -> Confidence:
    return Confidence.HIGH if score >= 0.8 else Confidence.MEDIUM if score >= CONFIDENT else Confidence.LOW


def _hyp(kind: CauseKind, score: float, summary: str, ids: list[str], subject: str | None) -> CauseHypothesis:
    score = round(min(score, 1.0), 3)
    return CauseHypothesis(kind=kind, score=score, confidence=confidence_for(score), summary=summary,
                           evidence_ids=list(dict.fromkeys(ids)), subject=subject)


def _near(a: datetime | None, b: datetime, before: float, after: float) -> bool:
    """a lies within [b - before, b + after] minutes."""
    return a is not None and -before <= (a - b).total_seconds() / 60 <= after


def _change_hypotheses(changes: list[ChangeSignal], metrics: list[MetricChange], logs: list[LogSignal],
                       symptom_seen: bool) -> list[CauseHypothesis]:
    out: list[CauseHypothesis] = []
    for ch in changes:
        if ch.proximity == 0:
            continue
        errors_after = [s for s in logs if s.notable and s.is_error and not s.suspicious
                        and _near(s.first_seen, ch.at, 1, 30)]
        metric_after = [m for m in metrics if m.upstream is None and _near(m.onset, ch.at, 2, 30)]
        score = 0.65 * ch.proximity + (0.2 if errors_after else 0) + (0.15 if metric_after else 0)
        if not symptom_seen:
            score *= 0.5  # nothing moved: a change is a lead, not a cause
        if ch.failed:
            score *= 0.6
        ids = [ch.evidence_id, *(s.evidence_id for s in errors_after[:2]),
               *(m.evidence_id for m in metric_after[:1])]
        kind = CauseKind.DEPLOY if ch.kind == "deploy" else CauseKind.CONFIG
        label = f"deploy {ch.name}" if ch.kind == "deploy" else f"config change “{ch.name}”"
        out.append(_hyp(kind, score, label, ids, ch.evidence_id))
    return out


def _dependency_hypotheses(metrics: list[MetricChange], logs: list[LogSignal], saturated: list[str],
                           onset: datetime, symptom: MetricChange | None) -> list[CauseHypothesis]:
    names = {s.upstream for s in logs if s.upstream and s.notable}
    names |= {m.upstream for m in metrics if m.upstream}
    out: list[CauseHypothesis] = []
    for name in sorted(n for n in names if n):
        pats = [s for s in logs if s.upstream == name and s.notable]
        mets = [m for m in metrics if m.upstream == name and _near(m.onset, onset, 30, 30)]
        score, ids = 0.0, []
        if pats:
            top = max(pats, key=lambda s: s.count)
            score += 0.45 + (0.05 if top.count >= 20 else 0)
            score += 0.1 if any(s.timeout_like for s in pats) else 0
            score += 0.1 if any(_near(s.first_seen, onset, 10, 15) for s in pats) else 0
            ids += [s.evidence_id for s in pats[:2]]
        if mets:
            score += 0.25 + (0.15 if any(m.saturated or m.evidence_id in saturated for m in mets) else 0)
            if symptom is None or any(_near(m.onset, symptom.onset, 0, 10) or m.onset <= symptom.onset
                                      for m in mets):
                score += 0.1
            ids += [m.evidence_id for m in mets[:2]]
        if symptom is not None:
            ids.append(symptom.evidence_id)
        out.append(_hyp(CauseKind.DEPENDENCY, score, name, ids, name))
    unnamed = [s for s in logs if s.notable and s.timeout_like and s.upstream is None and not s.suspicious
               and s.capacity_hint is None]
    if unnamed:
        score = 0.35 + (0.1 if any(_near(s.first_seen, onset, 10, 15) for s in unnamed) else 0)
        out.append(_hyp(CauseKind.DEPENDENCY, score, "an upstream service (timeouts)",
                        [s.evidence_id for s in unnamed[:2]], None))
    return out


def _capacity_hypotheses(metrics: list[MetricChange], logs: list[LogSignal], saturated: list[str],
                         onset: datetime, evidence: list[Evidence]) -> list[CauseHypothesis]:
    out: list[CauseHypothesis] = []
    own_metric_ids = {ev.id for ev in evidence if ev.kind == EvidenceKind.METRIC
                      and _metric_upstream(str(ev.data.get("query") or "")) is None}
    hot = [mid for mid in saturated if mid in own_metric_ids]
    moved = [m for m in metrics if m.evidence_id in hot and _near(m.onset, onset, 30, 30)]
    if hot:
        score = 0.45 + (0.2 if moved else 0)
        out.append(_hyp(CauseKind.CAPACITY, score, "CPU/memory saturation", hot[:2], "saturation"))
    for hint in ("pool", "memory", "threads"):
        pats = [s for s in logs if s.capacity_hint == hint and s.notable]
        if pats:
            score = 0.45 + (0.1 if any(_near(s.first_seen, onset, 10, 15) for s in pats) else 0)
            label = {"pool": "connection pool exhaustion", "memory": "memory exhaustion",
                     "threads": "thread pool exhaustion"}[hint]
            out.append(_hyp(CauseKind.CAPACITY, score, label, [s.evidence_id for s in pats[:2]], hint))
    return out


def _traffic_hypotheses(metrics: list[MetricChange], onset: datetime, symptom: MetricChange | None,
                        changes: list[ChangeSignal]) -> list[CauseHypothesis]:
    out: list[CauseHypothesis] = []
    for m in metrics:
        if m.role != MetricRole.TRAFFIC or m.upstream or not _near(m.onset, onset, 30, 10):
            continue
        ratio = m.ratio if m.ratio is not None else math.inf
        if ratio < 1.8:
            continue
        score = 0.5 + (0.15 if ratio >= 3 else 0)
        ids = [m.evidence_id]
        if symptom and symptom.evidence_id != m.evidence_id and _near(symptom.onset, m.onset, 2, 30):
            score += 0.15
            ids.append(symptom.evidence_id)
        if any(c.proximity >= 1.0 for c in changes):
            score *= 0.7  # a change that landed right before explains the traffic too (retries, loops)
        out.append(_hyp(CauseKind.TRAFFIC, score, "a traffic surge", ids, m.evidence_id))
    return out


def _unknown(signals_ids: list[str]) -> CauseHypothesis:
    return CauseHypothesis(kind=CauseKind.UNKNOWN, score=0.0, confidence=Confidence.LOW,
                           summary="no clear cause yet", evidence_ids=list(dict.fromkeys(signals_ids)))


def _rank(candidates: list[CauseHypothesis], fallback_ids: list[str]) -> list[CauseHypothesis]:
    order = list(CauseKind)
    listed = sorted((h for h in candidates if h.score >= LISTED),
                    key=lambda h: (-h.score, order.index(h.kind), h.summary))[:3]
    if not listed or listed[0].score < CONFIDENT:
        return [_unknown(fallback_ids), *listed]
    return listed


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def analyse(alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence]) -> Signals:
    """All deterministic signals for one alert. Pure: same inputs, same output."""
    metrics, saturated = _metric_signals(evidence, window)
    logs = _log_signals(evidence, window)
    onset, basis, onset_ids = _onset(window, metrics, logs)
    symptom = _symptom(alert, evidence, metrics)
    changes = _change_signals(evidence, onset)
    symptom_seen = bool([m for m in metrics if m.upstream is None]) or any(
        s.notable and s.is_error and not s.suspicious for s in logs)
    candidates = (_change_hypotheses(changes, metrics, logs, symptom_seen)
                  + _dependency_hypotheses(metrics, logs, saturated, onset, symptom)
                  + _capacity_hypotheses(metrics, logs, saturated, onset, evidence)
                  + _traffic_hypotheses(metrics, onset, symptom, changes))
    checked = [ev.id for ev in evidence if ev.kind in (EvidenceKind.MONITOR, EvidenceKind.INCIDENT)]
    metric_ids = [ev.id for ev in evidence if ev.kind == EvidenceKind.METRIC]
    checked += [symptom.evidence_id] if symptom else metric_ids[:3]
    return Signals(
        service=service.name, onset=onset, onset_basis=basis, onset_evidence=onset_ids,
        metric_changes=metrics,
        metrics_checked=metric_ids,
        symptom=symptom, log_signals=logs, changes=changes, saturated_metrics=saturated,
        runbook=_best_runbook(evidence, alert, service),
        hypotheses=_rank(candidates, checked),
        suspicious_evidence=[s.evidence_id for s in logs if s.suspicious],
    )
