"""The offline drafter: a complete, cited brief from deterministic signals, no model at all.

It is the embedded default and the last link of every model fallback chain, so it has to be
good on its own: short, specific, and honest. Every sentence is built from `bot.analyse`
signals and cites the evidence ids behind it. Evidence text is untrusted: only the safe,
bounded quotes that analysis prepared are used, and text that addresses the bot is counted,
never quoted. When nothing explains the onset the brief says "unknown" rather than promoting
a weak lead.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.analyse.analyser import analyse
from bot.analyse.signals import CauseHypothesis, ChangeSignal, LogSignal, MetricChange, MetricRole, Signals
from bot.core.models import (
    Alert,
    Brief,
    CauseKind,
    Claim,
    Confidence,
    DraftInfo,
    Evidence,
    EvidenceKind,
    LikelyCause,
    ServiceEntry,
    SourceGap,
    TicketProposal,
    TimelineEntry,
    TimeWindow,
)
from bot.core.untrusted import quote_untrusted

MAX_CAUSES = 3
MAX_TIMELINE = 8
MAX_ACTIONS = 6
MAX_RUNBOOK_STEPS = 3

_ROLE_NOUN = {
    MetricRole.ERRORS: "errors", MetricRole.LATENCY: "latency", MetricRole.TRAFFIC: "request rate",
    MetricRole.CPU: "CPU", MetricRole.MEMORY: "memory", MetricRole.POOL: "connection pool use",
    MetricRole.OTHER: "metric",
}
_METRIC_NAME = re.compile(r"^(?:[a-z0-9]+:)?([\w.]+)")


TIMELINE_HOURS = 3


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _hhmm(at: datetime) -> str:
    return at.strftime("%H:%M UTC")


def _num(value: float, unit: str | None = None) -> str:
    if unit in {"percent", "%"}:
        return f"{value:.0f}%"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}" if unit and unit not in {"count"} else text


def _metric_label(change: MetricChange) -> str:
    match = _METRIC_NAME.match(change.query.strip())
    name = match.group(1) if match else change.query
    return f"{_ROLE_NOUN[change.role]} (`{name}`)" if change.role != MetricRole.OTHER else f"`{name}`"


def _movement(change: MetricChange) -> str:
    verb = "rose" if change.after >= change.before else "fell"
    ratio = change.ratio
    times = f", {ratio:.1f}×" if ratio is not None and ratio >= 1.5 else ""
    return (f"{_metric_label(change)} {verb} from {_num(change.before, change.unit)} to "
            f"{_num(change.after, change.unit)}{times} at {_hhmm(change.onset)}")


def _log_phrase(signal: LogSignal) -> str:
    quote = f"“{signal.quote}”" if signal.quote else "an error pattern"
    novelty = "new" if signal.is_new else (f"{signal.spike_ratio:.0f}× baseline" if signal.spike_ratio else "")
    since = f" since {_hhmm(signal.first_seen)}" if signal.first_seen else ""
    tail = f" ({novelty})" if novelty else ""
    return f"{quote}: {signal.count:,} events{since}{tail}"


def _by_id(evidence: list[Evidence]) -> dict[str, Evidence]:
    return {item.id: item for item in evidence}


def _ids(*groups: list[str] | None) -> list[str]:
    return list(dict.fromkeys(cid for group in groups if group for cid in group))


def _alert_evidence(evidence: list[Evidence]) -> list[str]:
    return [e.id for e in evidence if e.kind in (EvidenceKind.INCIDENT, EvidenceKind.MONITOR)]


# --- the parts of a brief -------------------------------------------------------------------

def _headline(alert: Alert, service: ServiceEntry, signals: Signals, evidence: list[Evidence]) -> Claim:
    top = signals.top
    symptom = signals.symptom
    what = _symptom_phrase(alert, signals)
    if top.kind == CauseKind.UNKNOWN:
        cause = "cause not yet clear"
    else:
        cause = f"likely {_suspect(top)} ({top.confidence.value} confidence)"
    cites = _ids([symptom.evidence_id] if symptom else None, top.evidence_ids[:2] if top.kind != CauseKind.UNKNOWN
                 else None, _alert_evidence(evidence)[:1])
    return Claim(text=f"{service.name}: {what}; {cause}.", citations=cites)


def _suspect(hyp: CauseHypothesis) -> str:
    """The top hypothesis as a short noun phrase: "deploy v2.3.1 (9f1c2ab)", "Redis degraded"."""
    return f"{hyp.summary} degraded" if hyp.kind == CauseKind.DEPENDENCY else hyp.summary


def _symptom_phrase(alert: Alert, signals: Signals) -> str:
    symptom = signals.symptom
    return (f"{_ROLE_NOUN[symptom.role]} up since {_hhmm(symptom.onset)}" if symptom
            else f"alert “{_safe_title(alert.title)}”")


def _safe_title(title: str) -> str:
    return quote_untrusted(title, 80) or "incident"


def _impact(alert: Alert, signals: Signals, evidence: list[Evidence]) -> Claim:
    symptom = signals.symptom
    errors = signals.notable_errors()
    parts: list[str] = []
    cites: list[str] = []
    if symptom is not None:
        parts.append(_sentence(_movement(symptom)))
        cites.append(symptom.evidence_id)
    if errors:
        parts.append(f"top error {_log_phrase(errors[0])}")
        cites.append(errors[0].evidence_id)
    if not parts:
        alerting = _alert_evidence(evidence)
        if alerting:
            item = _by_id(evidence)[alerting[0]]
            parts.append(f"{item.title} is firing; no metric or log change was found in the window")
            cites.append(item.id)
        else:
            parts.append(f"Alert “{_safe_title(alert.title)}”; no metric or log evidence could be gathered")
    return Claim(text="; ".join(parts) + ".", citations=_ids(cites))


def _cause_text(hyp: CauseHypothesis, signals: Signals) -> str:
    change = next((c for c in signals.changes if c.evidence_id == hyp.subject), None)
    if hyp.kind in (CauseKind.DEPLOY, CauseKind.CONFIG) and change is not None:
        return _change_cause(hyp, change, signals)
    if hyp.kind == CauseKind.DEPENDENCY:
        upstream_logs = [s for s in signals.log_signals if s.upstream == hyp.subject and s.notable]
        upstream_metrics = [m for m in signals.metric_changes if hyp.subject and m.upstream == hyp.subject]
        failure = next((s for s in upstream_logs if s.failure), None)
        if failure is not None and failure.failure == "dns":
            bits = [f"{hyp.summary}: the name {failure.host or hyp.subject} does not resolve (DNS)"]
        elif failure is not None:
            bits = [f"{hyp.summary}: the TLS certificate of {failure.host or hyp.subject} has expired"]
        else:
            bits = [f"{hyp.summary} is degraded"]
        if upstream_metrics:
            bits.append(_movement(upstream_metrics[0]))
        if upstream_logs:
            bits.append(_log_phrase(upstream_logs[0]))
        page = next((p for p in signals.status_events if p.evidence_id in hyp.evidence_ids), None)
        if page is not None:
            bits.append(f"{page.vendor}'s status page at {_hhmm(page.at)}: “{page.title}”")
        return "; ".join(bits) + "."
    if hyp.kind == CauseKind.TRAFFIC:
        metric = next((m for m in signals.metric_changes if m.evidence_id == hyp.subject), None)
        return f"A traffic surge: {_movement(metric)}." if metric else "A traffic surge."
    if hyp.kind == CauseKind.CAPACITY:
        hot = [m for m in signals.metric_changes if m.evidence_id in hyp.evidence_ids]
        pats = [s for s in signals.log_signals if s.evidence_id in hyp.evidence_ids]
        bits = [_movement(m) for m in hot[:1]] + [_log_phrase(p) for p in pats[:1]]
        if not hot:
            ceiling = [m for m in signals.saturated_metrics if m in hyp.evidence_ids]
            bits += ["a limit metric at its ceiling"] if ceiling else []
        detail = "; ".join(bits)
        return f"Capacity: {hyp.summary}" + (f"; {detail}." if detail else ".")
    what = "the alert" if signals.onset_basis == "alert" else "the change"
    return ("No clear cause yet: no deploy, config change, dependency, capacity or traffic signal "
            f"explains {what} at {_hhmm(signals.onset)}.")


def _change_cause(hyp: CauseHypothesis, change: ChangeSignal, signals: Signals) -> str:
    when = (f"{change.minutes_before_onset:.0f} min before the onset" if change.minutes_before_onset >= 0
            else f"{-change.minutes_before_onset:.0f} min after the onset")
    kind = "Deploy" if change.kind == "deploy" else "Config change"
    name = change.name if change.kind == "deploy" else f"“{change.name}”"
    text = f"{kind} {name} landed at {_hhmm(change.at)}, {when}"
    if change.failed:
        text += " (its deployment status is failed)"
    followers = [s for s in signals.log_signals if s.evidence_id in hyp.evidence_ids and s.quote]
    if followers:
        text += f"; then {_log_phrase(followers[0])}"
    if change.detail:
        text += f". It shipped: {change.detail}"
    if change.content_match and change.inert is None:
        text += f". What it changed names {', '.join(change.content_match[:3])}, as the symptom does"
    elif change.inert is not None:
        text += f". Ranked down: it {change.inert}"
    elif hyp.confidence != Confidence.HIGH and change.files:
        text += ". Nothing it changed names what is failing, so timing alone points at it"
    return text.rstrip(".") + "."


def _causes(signals: Signals) -> list[LikelyCause]:
    causes = []
    for hyp in signals.hypotheses[:MAX_CAUSES]:
        causes.append(LikelyCause(kind=hyp.kind, confidence=hyp.confidence,
                                  claim=Claim(text=_cause_text(hyp, signals), citations=list(hyp.evidence_ids))))
    return causes


def _timeline(alert: Alert, signals: Signals, evidence: list[Evidence]) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    suspects = {h.subject for h in signals.hypotheses}
    set_aside = {r.evidence_id: r.reason for r in signals.ranked_down}
    for change in signals.changes:
        # The timeline is the incident's last hours; an older change appears only as a suspect,
        # a later one only when it was set aside (so the reader sees why it is not the cause).
        if (change.evidence_id not in suspects and change.evidence_id not in set_aside
                and not 0 <= change.minutes_before_onset <= TIMELINE_HOURS * 60):
            continue
        label = {"deploy": f"Deploy {change.name}", "config": f"Config change “{change.name}”",
                 "batch": f"Batch job “{change.name}”"}[change.kind]
        if change.environment and change.kind == "deploy":
            label += f" to {change.environment}"
        if change.evidence_id in set_aside:
            label += f"; ranked down: {set_aside[change.evidence_id]}"
        entries.append(TimelineEntry(at=change.at, claim=Claim(text=label + ".", citations=[change.evidence_id])))
    for page in signals.status_events[:1]:
        entries.append(TimelineEntry(at=page.at, claim=Claim(
            text=f"{page.vendor} status page: “{page.title}”.", citations=[page.evidence_id])))
    own = [m for m in signals.metric_changes if m.upstream is None]
    for metric in ([signals.symptom] if signals.symptom else own[:1]):
        entries.append(TimelineEntry(at=metric.onset, claim=Claim(text=_sentence(_movement(metric)) + ".",
                                                                  citations=[metric.evidence_id])))
    for metric in signals.metric_changes:
        if metric.upstream and metric is not signals.symptom:
            entries.append(TimelineEntry(at=metric.onset, claim=Claim(
                text=f"{metric.upstream}: " + _movement(metric) + ".", citations=[metric.evidence_id])))
            break
    for signal in signals.notable_errors()[:2]:
        if signal.first_seen is not None:
            entries.append(TimelineEntry(at=signal.first_seen, claim=Claim(
                text=f"First {_log_phrase(signal)}.", citations=[signal.evidence_id])))
    alerting = _alert_evidence(evidence)
    if alerting:
        entries.append(TimelineEntry(at=alert.triggered_at, claim=Claim(
            text=f"Alert fired: {_safe_title(alert.title)}.", citations=alerting[:1])))
    entries.sort(key=lambda entry: entry.at)
    return entries[-MAX_TIMELINE:]


def _actions(signals: Signals, evidence: list[Evidence]) -> list[Claim]:
    actions: list[Claim] = []
    top = signals.top
    change = next((c for c in signals.changes if c.evidence_id == top.subject), None)
    if top.kind == CauseKind.DEPLOY and change is not None:
        previous = next((c for c in signals.changes if c.evidence_id == change.previous_id), None)
        against = f" (back to {previous.name})" if previous else ""
        previous_ids = [previous.evidence_id] if previous else None
        actions.append(Claim(text=f"Consider rolling back {change.name}{against}, then watch the symptom.",
                             citations=_ids([change.evidence_id], previous_ids)))
    elif top.kind == CauseKind.CONFIG and change is not None:
        actions.append(Claim(text=f"Consider reverting the config change “{change.name}”, then watch "
                                  "the symptom.", citations=[change.evidence_id]))
    elif top.kind == CauseKind.DEPENDENCY:
        actions.append(Claim(text=f"Check the health of {top.summary} and whether the service degrades "
                                  "gracefully (timeouts, circuit breakers).", citations=list(top.evidence_ids)))
    elif top.kind == CauseKind.CAPACITY:
        actions.append(Claim(text=f"Relieve {top.summary}: scale out or raise the limit, then look for what "
                                  "grew.", citations=list(top.evidence_ids)))
    elif top.kind == CauseKind.TRAFFIC:
        actions.append(Claim(text="Find where the extra traffic comes from (a campaign, a retry loop, a client) "
                                  "and scale or rate-limit.", citations=list(top.evidence_ids)))
    if signals.runbook is not None:
        runbook = signals.runbook
        for step in runbook.steps[:MAX_RUNBOOK_STEPS]:
            actions.append(Claim(text=f"Runbook: {step}", citations=[runbook.evidence_id]))
        if not runbook.steps:
            actions.append(Claim(text=f"Follow the runbook “{runbook.title}”.", citations=[runbook.evidence_id]))
    by_kind = [e for e in evidence if e.kind == EvidenceKind.PAST_INCIDENT][:1]
    for item in by_kind:
        actions.append(Claim(text=f"Compare with a past incident on this service: {item.title}.",
                             citations=[item.id]))
    for item in [e for e in evidence if e.kind == EvidenceKind.JIRA_ISSUE][:1]:
        actions.append(Claim(text=f"An open ticket may already track this: {item.title}.", citations=[item.id]))
    return actions[:MAX_ACTIONS]


def _ticket(alert: Alert, service: ServiceEntry, signals: Signals, headline: Claim, causes: list[LikelyCause],
            evidence: list[Evidence]) -> TicketProposal | None:
    # A ticket needs a finding to act on: with no cause yet, the brief says so and proposes none.
    if not causes or causes[0].kind == CauseKind.UNKNOWN or not service.jira_project:
        return None
    summary = f"{service.name}: {_symptom_phrase(alert, signals)}, likely {_suspect(signals.top)}"
    return ticket_from_findings(alert, service, headline, causes[0], evidence, summary=summary)


def ticket_summary(service: ServiceEntry, text: str) -> str:
    """``service: text``, unless the text already names the service first (alert titles often
    do): "reports-api: reports-api: p99 latency" reads as a bug in the bot."""
    named = re.match(rf"{re.escape(service.name)}(?![\w-])", text, re.IGNORECASE)
    return text if named else f"{service.name}: {text}"


def ticket_from_findings(alert: Alert, service: ServiceEntry, headline: Claim, cause: LikelyCause,
                         evidence: list[Evidence], *, summary: str) -> TicketProposal | None:
    """A ticket proposal built from a brief's headline and top cause, citing what they cite:
    the offline drafter's own, and the model path's when its `ticket` task fails."""
    if not service.jira_project or cause.kind == CauseKind.UNKNOWN:
        return None
    cites = _ids(headline.citations, cause.claim.citations)
    if not cites:
        return None
    links = {e.id: e.link for e in evidence if e.link}
    lines = [f"Drafted by incident-brief from read-only evidence for {service.name}.", "", headline.text, "",
             f"Likely cause ({cause.confidence.value} confidence): {cause.claim.text}", "", "Evidence:"]
    lines += [f"- {cid}: {links.get(cid, '(no link)')}" for cid in cites]
    return TicketProposal(project=service.jira_project, summary=summary[:240], description="\n".join(lines)[:4000],
                          priority="High" if alert.urgency == "high" else "Medium", citations=cites)


def _notes(signals: Signals, gaps: list[SourceGap]) -> list[str]:
    notes = []
    if signals.suspicious_evidence:
        count = len(signals.suspicious_evidence)
        notes.append(f"{count} evidence item(s) contained text addressed to the bot (instructions or "
                     "broadcasts); they were counted as data, never quoted or followed.")
    if gaps:
        names = ", ".join(sorted({gap.source.value for gap in gaps}))
        notes.append(f"Drafted without {names}: see the gaps.")
    return notes


def draft_offline(alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence],
                  gaps: list[SourceGap], signals: Signals | None = None) -> Brief:
    """The brief from `signals` (the analysis of this evidence), analysing it here when not given."""
    signals = signals or analyse(alert, service, window, evidence)
    headline = _headline(alert, service, signals, evidence)
    causes = _causes(signals)
    return Brief(
        headline=headline,
        impact=_impact(alert, signals, evidence),
        likely_causes=causes,
        timeline=_timeline(alert, signals, evidence),
        next_actions=_actions(signals, evidence),
        gaps=list(gaps),
        ticket=_ticket(alert, service, signals, headline, causes, evidence),
        draft=DraftInfo(drafter="offline"),
        notes=_notes(signals, gaps),
    )
