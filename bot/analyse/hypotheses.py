"""Cause hypotheses from the signals, scored with the named weights of `bot.analyse.weights`,
and ranked: the first is the answer, and it is "unknown" unless it reaches medium confidence."""

from __future__ import annotations

import math
from datetime import datetime

from bot.analyse.signals import (
    CauseHypothesis,
    ChangeSignal,
    LogSignal,
    MetricChange,
    MetricRole,
    RankedDown,
    StatusSignal,
)
from bot.analyse.vocabulary import BATCH_DONE, RESOURCES, VENDOR_OF, metric_upstream
from bot.analyse.weights import (
    AFTER_ONSET_SLACK_MIN,
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
STATUS_NEAR_ONSET = (60.0, 30.0)  # a vendor's status page that speaks of the same hour
BATCH_BEFORE_ONSET = (180.0, 5.0)  # a batch job still likely running at the onset
RANKED_DOWN_AFTER_MIN = 60.0  # changes this soon after the onset are named as set aside
MAX_LISTED = 3


def confidence_for(score: float) -> Confidence:
    return Confidence.HIGH if score >= HIGH else Confidence.MEDIUM if score >= CONFIDENT else Confidence.LOW


def _hyp(kind: CauseKind, score: float, summary: str, ids: list[str], subject: str | None,
         reasons: list[str] | None = None, at: datetime | None = None) -> CauseHypothesis:
    score = round(min(score, 1.0), 3)
    return CauseHypothesis(kind=kind, score=score, confidence=confidence_for(score), summary=summary,
                           evidence_ids=list(dict.fromkeys(ids)), subject=subject, reasons=reasons or [], at=at)


def _near(a: datetime | None, b: datetime, span: tuple[float, float]) -> bool:
    """a lies within [b - before, b + after] minutes, with ``span = (before, after)``."""
    before, after = span
    return a is not None and -before <= (a - b).total_seconds() / 60 <= after


def _when(minutes_before: float, basis: str) -> str:
    if minutes_before >= 0:
        return f"landed {minutes_before:.0f} min before {basis}"
    return f"landed {-minutes_before:.0f} min after {basis}"


def _change_label(ch: ChangeSignal) -> str:
    return {"deploy": f"deploy {ch.name}", "config": f"config change “{ch.name}”",
            "batch": f"batch job “{ch.name}”"}[ch.kind]


def change_hypotheses(changes: list[ChangeSignal], metrics: list[MetricChange], logs: list[LogSignal],
                      symptom_seen: bool, basis: str = "the onset") -> tuple[list[CauseHypothesis], list[RankedDown]]:
    """Deploys and config changes as causes, and those set aside with the reason why. `basis`
    names what dates the onset ("the errors began") for the reasons a reader sees."""
    out: list[CauseHypothesis] = []
    down: list[RankedDown] = []
    for ch in changes:
        if ch.kind == "batch":
            continue  # a batch job is read as load on a resource (`capacity_hypotheses`)
        kind = CauseKind.DEPLOY if ch.kind == "deploy" else CauseKind.CONFIG
        label = _change_label(ch)
        if ch.minutes_before_onset <= -AFTER_ONSET_SLACK_MIN:
            if ch.minutes_before_onset >= -RANKED_DOWN_AFTER_MIN:
                down.append(RankedDown(evidence_id=ch.evidence_id, kind=kind, name=label,
                                       reason=_when(ch.minutes_before_onset, basis)))
            continue  # nothing that begins after the onset can have caused it
        if ch.proximity == 0:
            continue
        errors_after = [s for s in logs if s.notable and s.is_error and not s.suspicious
                        and _near(s.first_seen, ch.at, CHANGE_FOLLOWED)]
        metric_after = [m for m in metrics if m.upstream is None and _near(m.onset, ch.at, METRIC_FOLLOWED)]
        reasons = [_when(ch.minutes_before_onset, basis)]
        score = (CHANGE.timing * ch.proximity + (CHANGE.errors_follow if errors_after else 0)
                 + (CHANGE.metric_follows if metric_after else 0))
        if errors_after:
            reasons.append("new errors began right after it")
        if ch.content_match and ch.inert is None:
            score += CHANGE.content_matches
            reasons.append("what it changed names " + ", ".join(ch.content_match[:3]) + ", as the symptom does")
        elif ch.proximity >= 1.0:
            # Timing without content: an honest "medium" at most (calibration: "high" needs both).
            score = min(score, CHANGE.timing_only_cap)
            reasons.append("nothing it changed names what is failing")
        if not symptom_seen:
            score *= CHANGE.no_symptom_factor
        if ch.failed:
            score *= CHANGE.failed_factor
            reasons.append("its deployment failed, so the previous version likely kept serving")
        if ch.inert is not None:
            score *= CHANGE.inert_factor
            reasons.append(ch.inert)
            down.append(RankedDown(evidence_id=ch.evidence_id, kind=kind, name=label, reason=ch.inert))
        ids = [ch.evidence_id, *(s.evidence_id for s in errors_after[:2]),
               *(m.evidence_id for m in metric_after[:1])]
        out.append(_hyp(kind, score, label, ids, ch.evidence_id, reasons, ch.at))
    return out, down


def _dependency_name(name: str, pats: list[LogSignal]) -> str:
    """"Stripe (api.stripe.com)": the vendor or technology and the host the errors name."""
    host = next((s.host for s in pats if s.host), None)
    return f"{name} ({host})" if host and host != name.lower() else name


def dependency_hypotheses(metrics: list[MetricChange], logs: list[LogSignal], saturated: list[str],
                          onset: datetime, symptom: MetricChange | None,
                          status: list[StatusSignal] | None = None) -> list[CauseHypothesis]:
    status = status or []
    names = {s.upstream for s in logs if s.upstream and s.notable and s.capacity_hint is None}
    names |= {m.upstream for m in metrics if m.upstream and not _at_limit(m, saturated)}
    live = [s for s in status if not s.resolved and _near(s.at, onset, STATUS_NEAR_ONSET)]
    # A status page speaks for the vendor's managed services the evidence already names (AWS for S3).
    names |= {s.vendor for s in live if not any(VENDOR_OF.get(n or "") == s.vendor for n in names)}
    out: list[CauseHypothesis] = []
    for name in sorted(n for n in names if n):
        # A limit reached (connection slots, a full disk) is capacity, read in `capacity_hypotheses`.
        pats = [s for s in logs if s.upstream == name and s.notable and s.capacity_hint is None]
        mets = [m for m in metrics if m.upstream == name and _near(m.onset, onset, AROUND_ONSET)
                and not _at_limit(m, saturated)]
        pages = [s for s in live if s.vendor in (name, VENDOR_OF.get(name))]
        score, ids, reasons = 0.0, [], []
        if pats:
            top = max(pats, key=lambda s: s.count)
            score += DEPENDENCY.named_in_logs + (DEPENDENCY.busy_logs if top.count >= BUSY_PATTERN_EVENTS else 0)
            score += DEPENDENCY.timeouts if any(s.timeout_like for s in pats) else 0
            near = any(_near(s.first_seen, onset, STARTED_WITH_ONSET) for s in pats)
            score += DEPENDENCY.logs_near_onset if near else 0
            ids += [s.evidence_id for s in pats[:2]]
            reasons.append(f"{top.count:,} error events name it" + (", starting with the incident" if near else ""))
            failure = next((s for s in pats if s.failure), None)
            if failure is not None:
                score += DEPENDENCY.dns_or_certificate
                what = "does not resolve (DNS)" if failure.failure == "dns" else "presents an expired certificate"
                reasons.append(f"{failure.host or name} {what}")
        if mets:
            score += DEPENDENCY.metrics_moved + (DEPENDENCY.saturated if any(
                m.saturated or m.evidence_id in saturated for m in mets) else 0)
            if symptom is None or any(_near(m.onset, symptom.onset, LEADS_SYMPTOM) or m.onset <= symptom.onset
                                      for m in mets):
                score += DEPENDENCY.metrics_lead_symptom
            ids += [m.evidence_id for m in mets[:2]]
            reasons.append("its own metrics stepped at the onset")
        if pages:
            score += DEPENDENCY.status_page if (pats or mets) else DEPENDENCY.status_page_alone
            ids.append(pages[0].evidence_id)
            reasons.append(f"its status page says “{pages[0].title}”")
        if symptom is not None:
            ids.append(symptom.evidence_id)
        out.append(_hyp(CauseKind.DEPENDENCY, score, _dependency_name(name, pats), ids, name, reasons))
    unnamed = [s for s in logs if s.notable and s.timeout_like and s.upstream is None and not s.suspicious
               and s.capacity_hint is None]
    if unnamed:
        score = DEPENDENCY.unnamed_timeouts + (DEPENDENCY.unnamed_near_onset if any(
            _near(s.first_seen, onset, STARTED_WITH_ONSET) for s in unnamed) else 0)
        out.append(_hyp(CauseKind.DEPENDENCY, score, "an upstream service (timeouts)",
                        [s.evidence_id for s in unnamed[:2]], None, ["timeouts whose errors name no dependency"]))
    return out


_EXHAUSTION_LABELS = {"pool": "connection pool exhaustion", "memory": "memory exhaustion",
                      "threads": "thread pool exhaustion", "disk": "disk full",
                      "cpu": "CPU saturation"}


def _at_limit(metric: MetricChange, saturated: list[str]) -> bool:
    """A pool, connection, disk or memory metric at its ceiling: capacity, not an outage."""
    return (metric.saturated or metric.evidence_id in saturated) and _resource(metric.query) not in (None, "cpu")


def _resource(query: str) -> str | None:
    """Which limited resource a metric measures ("pool", "memory", "disk", "cpu"), if any."""
    name = query.split("{", 1)[0]
    for resource, pattern in RESOURCES:
        if pattern.search(name):
            return resource
    return None


def capacity_hypotheses(metrics: list[MetricChange], logs: list[LogSignal], saturated: list[str],
                        onset: datetime, evidence: list[Evidence],
                        changes: list[ChangeSignal] | None = None) -> list[CauseHypothesis]:
    """A resource at its limit: the service's own CPU or memory, or any pool, connection, memory
    or disk limit (a database's connection slots too: that is capacity, not an outage), read
    from saturated metrics and exhaustion logs; a batch job running then is named with it."""
    out: list[CauseHypothesis] = []
    queries = {ev.id: str(ev.data.get("query") or "") for ev in evidence if ev.kind == EvidenceKind.METRIC}
    # A job that says it finished is no longer holding anything.
    batch = [c for c in changes or [] if c.kind == "batch" and _near(c.at, onset, BATCH_BEFORE_ONSET)
             and not BATCH_DONE.search(c.name)]
    by_resource: dict[str, list[str]] = {}
    for mid in saturated:
        query = queries.get(mid, "")
        resource = _resource(query) or "cpu"
        upstream = metric_upstream(query)
        if upstream is not None and resource == "cpu":
            continue  # a dependency's CPU at the limit is that dependency degraded
        by_resource.setdefault(resource, []).append(mid)
    for resource in sorted(set(by_resource) | {s.capacity_hint for s in logs if s.capacity_hint and s.notable}):
        hot = by_resource.get(resource, [])
        pats = [s for s in logs if s.capacity_hint == resource and s.notable]
        moved = [m for m in metrics if m.evidence_id in hot and _near(m.onset, onset, AROUND_ONSET)]
        metric_part = (CAPACITY.saturated_metric + (CAPACITY.saturated_moved if moved else 0)) if hot else 0.0
        near = any(_near(s.first_seen, onset, STARTED_WITH_ONSET) for s in pats)
        log_part = (CAPACITY.exhaustion_logs + (CAPACITY.exhaustion_near_onset if near else 0)) if pats else 0.0
        score = max(metric_part, log_part) + (CAPACITY.both if hot and pats else 0.0)
        reasons = []
        if hot:
            reasons.append("a limit metric sits at its ceiling" + (" since the onset" if moved else ""))
        if pats:
            reasons.append(f"{pats[0].count:,} log events say it ran out")
        owner = next((metric_upstream(queries.get(mid, "")) for mid in hot if metric_upstream(queries.get(mid, ""))),
                     None) or next((s.upstream for s in pats if s.upstream), None)
        label = _EXHAUSTION_LABELS[resource] if resource != "cpu" or not hot else "CPU/memory saturation"
        if owner and resource == "pool":
            label = f"{owner} connection slots exhausted"
        ids = [*hot[:2], *(s.evidence_id for s in pats[:2])]
        if batch and (hot or pats):
            job = batch[-1]
            score += CAPACITY.batch_job
            label += f" while batch job “{job.name}” runs"
            ids.append(job.evidence_id)
            reasons.append(f"batch job “{job.name}” started {max(job.minutes_before_onset, 0):.0f} min before")
        subject = "saturation" if resource == "cpu" else resource
        out.append(_hyp(CauseKind.CAPACITY, score, label, ids, subject, reasons))
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
        # A change just before explains the surge (retries, a loop) only when what it changed
        # names what is failing: one that matches by timing alone, or changed only docs, is no
        # better an explanation of a surge that led the symptom than the surge itself.
        if any(c.proximity >= 1.0 and c.content_match and not c.inert for c in changes):
            score *= TRAFFIC.recent_change_factor
        reasons = [f"request rate up {ratio:.1f}× at the onset"]
        if len(ids) > 1:
            reasons.append("the symptom followed the traffic")
        out.append(_hyp(CauseKind.TRAFFIC, score, "a traffic surge", ids, m.evidence_id, reasons))
    return out


def unknown(signals_ids: list[str]) -> CauseHypothesis:
    return CauseHypothesis(kind=CauseKind.UNKNOWN, score=0.0, confidence=Confidence.LOW,
                           summary="no clear cause yet", evidence_ids=list(dict.fromkeys(signals_ids)))


def rank(candidates: list[CauseHypothesis], fallback_ids: list[str]) -> list[CauseHypothesis]:
    """The strongest hypotheses first (ties broken by kind, then name); "unknown" leads unless the
    first reaches medium confidence."""
    order = list(CauseKind)
    # Ties go to the kind order, then to the suspect closest before the onset (the later change).
    listed = sorted((h for h in candidates if h.score >= LISTED),
                    key=lambda h: (-h.score, order.index(h.kind), -(h.at.timestamp() if h.at else 0.0),
                                   h.summary))[:MAX_LISTED]
    if not listed or listed[0].score < CONFIDENT:
        return [unknown(fallback_ids), *listed]
    return listed
