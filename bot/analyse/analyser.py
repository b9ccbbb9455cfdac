"""The analysis's entry point: all deterministic signals for one alert, no model at all.

`analyse(alert, service, window, evidence)` reads the evidence conventions documented in
`bot.core.models` and returns typed `Signals`:

- the incident **onset**: the earliest metric level change or new error pattern inside the
  incident window, else the alert time;
- metric **level changes** (`bot.core.changepoint`), log patterns that are **new** or
  **spiking** (with the host they name and whether it is a DNS or certificate failure),
  **deploys, config changes and batch jobs** weighed by how shortly they landed before the
  onset *and* by whether what they touched names the symptom (`bot.analyse.relevance`),
  **vendor status-page events**, **dependency** and **capacity/traffic** signals, the
  best-matching **runbook**;
- ranked `CauseHypothesis` entries (`bot.analyse.hypotheses`), each with its `reasons`. The
  first one is the answer; it is ``unknown`` whenever no hypothesis reaches medium confidence,
  so a deploy from days ago or a flag flipped hours before never becomes "the cause" for want
  of anything better. Nothing that began after the onset is ranked: such changes, and changes
  that touched only docs or copy, are listed in `Signals.ranked_down` with the reason.

Everything here is pure (no I/O, no clock). Evidence text is untrusted (`bot.core.untrusted`):
text that reads like instructions to the bot is never quoted and never used to name a cause.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Literal

from bot.analyse.changes import change_signals, status_signals
from bot.analyse.hypotheses import (
    capacity_hypotheses,
    change_hypotheses,
    dependency_hypotheses,
    rank,
    traffic_hypotheses,
)
from bot.analyse.logs import log_signals
from bot.analyse.metrics import metric_signals
from bot.analyse.relevance import words
from bot.analyse.runbooks import best_runbook
from bot.analyse.signals import LogSignal, MetricChange, MetricRole, Signals
from bot.core.changepoint import ONSET_SLACK
from bot.core.models import Alert, Evidence, EvidenceKind, ServiceEntry, TimeWindow


def onset_of(window: TimeWindow, changes: list[MetricChange],
             logs: list[LogSignal]) -> tuple[datetime, Literal["metric", "log", "alert"], list[str]]:
    """When the incident began: the earliest metric step or new error pattern near the window,
    else the alert; with the evidence that dates it."""
    lo, hi = window.start - ONSET_SLACK, window.alert_at + ONSET_SLACK
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


def symptom_of(alert: Alert, evidence: list[Evidence], changes: list[MetricChange]) -> MetricChange | None:
    """The service's own metric step the alert is about: the monitor's query, else the role
    the alert title names, else the biggest error or latency step."""
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


def analyse(alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence]) -> Signals:
    """All deterministic signals for one alert. Pure: same inputs, same output."""
    metrics, saturated = metric_signals(evidence, window)
    logs = log_signals(evidence, window)
    onset, basis, onset_ids = onset_of(window, metrics, logs)
    symptom = symptom_of(alert, evidence, metrics)
    changes = change_signals(evidence, onset, symptom_words(alert, service, metrics, logs, symptom))
    status = status_signals(evidence)
    symptom_seen = bool([m for m in metrics if m.upstream is None]) or any(
        s.notable and s.is_error and not s.suspicious for s in logs)
    basis_phrase = {"metric": "the symptom began", "log": "the errors began", "alert": "the alert"}[basis]
    change_hyps, ranked_down = change_hypotheses(changes, metrics, logs, symptom_seen, basis_phrase)
    candidates = (change_hyps
                  + dependency_hypotheses(metrics, logs, saturated, onset, symptom, status)
                  + capacity_hypotheses(metrics, logs, saturated, onset, evidence, changes)
                  + traffic_hypotheses(metrics, onset, symptom, changes))
    checked = [ev.id for ev in evidence if ev.kind in (EvidenceKind.MONITOR, EvidenceKind.INCIDENT)]
    metric_ids = [ev.id for ev in evidence if ev.kind == EvidenceKind.METRIC]
    checked += [symptom.evidence_id] if symptom else metric_ids[:3]
    return Signals(
        service=service.name, onset=onset, onset_basis=basis, onset_evidence=onset_ids,
        metric_changes=metrics,
        metrics_checked=metric_ids,
        symptom=symptom, log_signals=logs, changes=changes, saturated_metrics=saturated,
        runbook=best_runbook(evidence, alert, service, failing_words(service, logs)),
        hypotheses=rank(candidates, checked),
        suspicious_evidence=[s.evidence_id for s in logs if s.suspicious],
        status_events=status, ranked_down=ranked_down,
    )


def symptom_words(alert: Alert, service: ServiceEntry, metrics: list[MetricChange],
                  logs: list[LogSignal], symptom: MetricChange | None) -> set[str]:
    """What is failing, as words a change's content can be compared with: the new or spiking
    error text, the failing metric's name, the dependencies and hosts involved, the alert's
    title. The service's own name is left out (every change and every error carries it)."""
    texts = [alert.title]
    texts += [s.quote or "" for s in logs if s.notable and s.is_error and not s.suspicious]
    texts += [s.upstream or "" for s in logs if s.notable and not s.suspicious]
    texts += [s.host or "" for s in logs if s.notable and not s.suspicious]
    # The failing metric's name and the tags that narrow it (an endpoint, a queue), not the
    # service's or the environment's.
    texts += [re.sub(r"\b(?:service|env|host|region):[^,}]*", "", m.query) for m in ([symptom] if symptom else [])]
    texts += [m.upstream or "" for m in metrics]
    return words("\n".join(texts), _service_words(service))


def failing_words(service: ServiceEntry, logs: list[LogSignal]) -> set[str]:
    """What is failing, in the words a runbook about it would use: the new or spiking error text
    and the dependencies and hosts it names (not the alert's title: every page about the
    service shares that)."""
    notable = [s for s in logs if s.notable and not s.suspicious]
    texts = [" ".join(s.terms) for s in notable if s.is_error]
    texts += [s.upstream or "" for s in notable] + [s.host or "" for s in notable]
    return words("\n".join(texts), _service_words(service))


def _service_words(service: ServiceEntry) -> list[str]:
    """The service's name and its parts: every change and every error carries them."""
    return [service.name, *service.name.replace("_", "-").split("-")]
