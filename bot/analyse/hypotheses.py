"""Cause hypotheses from the signals, scored with the named weights of `bot.analyse.weights`,
and ranked: the first is the answer, and it is "unknown" unless it reaches medium confidence."""

from __future__ import annotations

import math
from datetime import datetime

from bot.analyse.signals import CauseHypothesis, ChangeSignal, LogSignal, MetricChange, MetricRole
from bot.analyse.vocabulary import metric_upstream
from bot.analyse.weights import (
    BUSY_PATTERN_EVENTS,
    CAPACITY,
    CHANGE,
    CONFIDENT,
    DEPENDENCY,
    HIGH,
    LISTED,
    TRAFFIC,
    TRAFFIC_BIG_SURGE_RATIO,
    TRAFFIC_SURGE_RATIO,
)
from bot.core.models import CauseKind, Confidence, Evidence, EvidenceKind

# Time windows, in minutes (before, after) a reference time, within which two things count as
# happening together.
STARTED_WITH_ONSET = (10.0, 15.0)  # a log pattern that began with the incident
AROUND_ONSET = (30.0, 30.0)  # a metric step that belongs to the incident, not to another day
TRAFFIC_BEFORE_ONSET = (30.0, 10.0)  # a surge that precedes (or barely trails) the symptom
CHANGE_FOLLOWED = (1.0, CHANGE.errors_follow_within_min)  # errors that began after a change
METRIC_FOLLOWED = (2.0, CHANGE.metric_follows_within_min)  # a metric step after a change
SYMPTOM_AFTER_TRAFFIC = (2.0, 30.0)
LEADS_SYMPTOM = (0.0, 10.0)  # a dependency metric stepped with or just before the symptom
MAX_LISTED = 3


def confidence_for(score: float) -> Confidence:
    return Confidence.HIGH if score >= HIGH else Confidence.MEDIUM if score >= CONFIDENT else Confidence.LOW


def _hyp(kind: CauseKind, score: float, summary: str, ids: list[str], subject: str | None) -> CauseHypothesis:
    score = round(min(score, 1.0), 3)
    return CauseHypothesis(kind=kind, score=score, confidence=confidence_for(score), summary=summary,
                           evidence_ids=list(dict.fromkeys(ids)), subject=subject)


def _near(a: datetime | None, b: datetime, span: tuple[float, float]) -> bool:
    """a lies within [b - before, b + after] minutes, with ``span = (before, after)``."""
    before, after = span
    return a is not None and -before <= (a - b).total_seconds() / 60 <= after


def change_hypotheses(changes: list[ChangeSignal], metrics: list[MetricChange], logs: list[LogSignal],
                      symptom_seen: bool) -> list[CauseHypothesis]:
    out: list[CauseHypothesis] = []
    for ch in changes:
        if ch.proximity == 0:
            continue
        errors_after = [s for s in logs if s.notable and s.is_error and not s.suspicious
                        and _near(s.first_seen, ch.at, CHANGE_FOLLOWED)]
        metric_after = [m for m in metrics if m.upstream is None and _near(m.onset, ch.at, METRIC_FOLLOWED)]
        score = (CHANGE.timing * ch.proximity + (CHANGE.errors_follow if errors_after else 0)
                 + (CHANGE.metric_follows if metric_after else 0))
        if not symptom_seen:
            score *= CHANGE.no_symptom_factor
        if ch.failed:
            score *= CHANGE.failed_factor
        ids = [ch.evidence_id, *(s.evidence_id for s in errors_after[:2]),
               *(m.evidence_id for m in metric_after[:1])]
        kind = CauseKind.DEPLOY if ch.kind == "deploy" else CauseKind.CONFIG
        label = f"deploy {ch.name}" if ch.kind == "deploy" else f"config change “{ch.name}”"
        out.append(_hyp(kind, score, label, ids, ch.evidence_id))
    return out


def dependency_hypotheses(metrics: list[MetricChange], logs: list[LogSignal], saturated: list[str],
                          onset: datetime, symptom: MetricChange | None) -> list[CauseHypothesis]:
    names = {s.upstream for s in logs if s.upstream and s.notable}
    names |= {m.upstream for m in metrics if m.upstream}
    out: list[CauseHypothesis] = []
    for name in sorted(n for n in names if n):
        pats = [s for s in logs if s.upstream == name and s.notable]
        mets = [m for m in metrics if m.upstream == name and _near(m.onset, onset, AROUND_ONSET)]
        score, ids = 0.0, []
        if pats:
            top = max(pats, key=lambda s: s.count)
            score += DEPENDENCY.named_in_logs + (DEPENDENCY.busy_logs if top.count >= BUSY_PATTERN_EVENTS else 0)
            score += DEPENDENCY.timeouts if any(s.timeout_like for s in pats) else 0
            score += DEPENDENCY.logs_near_onset if any(
                _near(s.first_seen, onset, STARTED_WITH_ONSET) for s in pats) else 0
            ids += [s.evidence_id for s in pats[:2]]
        if mets:
            score += DEPENDENCY.metrics_moved + (DEPENDENCY.saturated if any(
                m.saturated or m.evidence_id in saturated for m in mets) else 0)
            if symptom is None or any(_near(m.onset, symptom.onset, LEADS_SYMPTOM) or m.onset <= symptom.onset
                                      for m in mets):
                score += DEPENDENCY.metrics_lead_symptom
            ids += [m.evidence_id for m in mets[:2]]
        if symptom is not None:
            ids.append(symptom.evidence_id)
        out.append(_hyp(CauseKind.DEPENDENCY, score, name, ids, name))
    unnamed = [s for s in logs if s.notable and s.timeout_like and s.upstream is None and not s.suspicious
               and s.capacity_hint is None]
    if unnamed:
        score = DEPENDENCY.unnamed_timeouts + (DEPENDENCY.unnamed_near_onset if any(
            _near(s.first_seen, onset, STARTED_WITH_ONSET) for s in unnamed) else 0)
        out.append(_hyp(CauseKind.DEPENDENCY, score, "an upstream service (timeouts)",
                        [s.evidence_id for s in unnamed[:2]], None))
    return out


_EXHAUSTION_LABELS = {"pool": "connection pool exhaustion", "memory": "memory exhaustion",
                      "threads": "thread pool exhaustion"}


def capacity_hypotheses(metrics: list[MetricChange], logs: list[LogSignal], saturated: list[str],
                        onset: datetime, evidence: list[Evidence]) -> list[CauseHypothesis]:
    out: list[CauseHypothesis] = []
    own_metric_ids = {ev.id for ev in evidence if ev.kind == EvidenceKind.METRIC
                      and metric_upstream(str(ev.data.get("query") or "")) is None}
    hot = [mid for mid in saturated if mid in own_metric_ids]
    moved = [m for m in metrics if m.evidence_id in hot and _near(m.onset, onset, AROUND_ONSET)]
    if hot:
        score = CAPACITY.saturated_metric + (CAPACITY.saturated_moved if moved else 0)
        out.append(_hyp(CauseKind.CAPACITY, score, "CPU/memory saturation", hot[:2], "saturation"))
    for hint, label in _EXHAUSTION_LABELS.items():
        pats = [s for s in logs if s.capacity_hint == hint and s.notable]
        if pats:
            score = CAPACITY.exhaustion_logs + (CAPACITY.exhaustion_near_onset if any(
                _near(s.first_seen, onset, STARTED_WITH_ONSET) for s in pats) else 0)
            out.append(_hyp(CauseKind.CAPACITY, score, label, [s.evidence_id for s in pats[:2]], hint))
    return out


def traffic_hypotheses(metrics: list[MetricChange], onset: datetime, symptom: MetricChange | None,
                       changes: list[ChangeSignal]) -> list[CauseHypothesis]:
    out: list[CauseHypothesis] = []
    for m in metrics:
        if m.role != MetricRole.TRAFFIC or m.upstream or not _near(m.onset, onset, TRAFFIC_BEFORE_ONSET):
            continue
        ratio = m.ratio if m.ratio is not None else math.inf
        if ratio < TRAFFIC_SURGE_RATIO:
            continue
        score = TRAFFIC.surge + (TRAFFIC.big_surge if ratio >= TRAFFIC_BIG_SURGE_RATIO else 0)
        ids = [m.evidence_id]
        if symptom and symptom.evidence_id != m.evidence_id and _near(symptom.onset, m.onset, SYMPTOM_AFTER_TRAFFIC):
            score += TRAFFIC.symptom_follows
            ids.append(symptom.evidence_id)
        if any(c.proximity >= 1.0 for c in changes):
            score *= TRAFFIC.recent_change_factor
        out.append(_hyp(CauseKind.TRAFFIC, score, "a traffic surge", ids, m.evidence_id))
    return out


def unknown(signals_ids: list[str]) -> CauseHypothesis:
    return CauseHypothesis(kind=CauseKind.UNKNOWN, score=0.0, confidence=Confidence.LOW,
                           summary="no clear cause yet", evidence_ids=list(dict.fromkeys(signals_ids)))


def rank(candidates: list[CauseHypothesis], fallback_ids: list[str]) -> list[CauseHypothesis]:
    """The strongest hypotheses first (ties broken by kind, then name); "unknown" leads unless the
    first reaches medium confidence."""
    order = list(CauseKind)
    listed = sorted((h for h in candidates if h.score >= LISTED),
                    key=lambda h: (-h.score, order.index(h.kind), h.summary))[:MAX_LISTED]
    if not listed or listed[0].score < CONFIDENT:
        return [unknown(fallback_ids), *listed]
    return listed
