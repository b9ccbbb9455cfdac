"""Deploys, config changes and batch jobs read as suspects: how well each one's timing fits the
onset and whether what it touched points at the symptom (`bot.analyse.relevance`); and vendor
status-page events (Datadog's Statuspage integration posts them) read as dependency evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from bot.analyse.relevance import change_text, content_match, inert_reason, surface_forms, words
from bot.analyse.signals import ChangeSignal, StatusSignal
from bot.analyse.values import as_int, aware
from bot.analyse.vocabulary import (
    BATCH_SOURCES,
    BATCH_WORDS,
    CONFIG_SOURCES,
    CONFIG_WORDS,
    DEPLOY_WORDS,
    FAILURE_EVENT,
    KIND_PREFIX,
    PROD_ENVS,
    STATUS_DEGRADED,
    STATUS_PAGE_SOURCES,
    STATUS_RESOLVED,
    find_vendor,
)
from bot.analyse.weights import AFTER_ONSET_SLACK_MIN, PROXIMITY
from bot.core.models import Evidence, EvidenceKind
from bot.core.untrusted import quote_untrusted


def proximity(minutes_before: float) -> float:
    """How strongly a change's timing suggests it caused the onset (`weights.PROXIMITY`)."""
    if minutes_before <= -AFTER_ONSET_SLACK_MIN:  # landed after the onset
        return 0.0
    for within, score in PROXIMITY:
        if minutes_before <= within:
            return score
    return 0.0


def _sources(ev: Evidence) -> set[str]:
    tags = [str(t).lower() for t in ev.data.get("tags") or []]
    source = str(ev.data.get("source") or "").lower()
    return {source} | {t.split(":", 1)[1] for t in tags if t.startswith("source:")}


def _event_kind(ev: Evidence) -> Literal["deploy", "config", "batch"] | None:
    tags = [str(t).lower() for t in ev.data.get("tags") or []]
    sources = _sources(ev)
    if sources & STATUS_PAGE_SOURCES:
        return None  # a vendor's status page is dependency evidence (`status_signals`)
    # An OOM kill, a failed scale-up or an exceeded quota is the platform reporting a symptom:
    # ranking it as a change would blame (or set aside) the symptom itself.
    if FAILURE_EVENT.search(ev.title):
        return None
    # A cron or batch job competes for capacity; it changes no configuration (checked first:
    # Kubernetes also runs CronJobs).
    if sources & BATCH_SOURCES or BATCH_WORDS.search(ev.title):
        return "batch"
    if sources & CONFIG_SOURCES or any("config" in t or "feature_flag" in t for t in tags):
        return "config"
    if CONFIG_WORDS.search(ev.title):
        return "config"
    if DEPLOY_WORDS.search(ev.title) or "deploy" in sources:
        return "deploy"
    return None


def status_signals(evidence: list[Evidence]) -> list[StatusSignal]:
    """Vendor status-page events: who is degraded, since when, and whether it is resolved."""
    out: list[StatusSignal] = []
    for ev in evidence:
        if ev.kind != EvidenceKind.EVENT or ev.timestamp is None or not _sources(ev) & STATUS_PAGE_SOURCES:
            continue
        tags = [str(t) for t in ev.data.get("tags") or []]
        page = next((t.split(":", 1)[1] for t in tags if t.lower().startswith(("statuspage_page:", "vendor:",
                                                                                 "provider:"))), "")
        title = _event_title(ev, None)
        vendor = find_vendor(page) or find_vendor(title) or (quote_untrusted(page, 40) if page else None)
        quoted = quote_untrusted(title, 90)
        if vendor is None or quoted is None:
            continue
        resolved = bool(STATUS_RESOLVED.search(title)) and not STATUS_DEGRADED.search(
            STATUS_RESOLVED.sub("", title))
        out.append(StatusSignal(evidence_id=ev.id, vendor=vendor, at=aware(ev.timestamp), title=quoted,
                                resolved=resolved))
    out.sort(key=lambda s: (s.at, s.evidence_id))
    return out


def change_signals(evidence: list[Evidence], onset: datetime,
                   symptom_words: set[str] | None = None) -> list[ChangeSignal]:
    """Every production change with its timing against `onset` and, when `symptom_words` are
    given (`bot.analyse.relevance.words` of the error text, failing metric and dependencies),
    the words its content shares with them."""
    symptom = symptom_words or set()
    deploys = sorted((ev for ev in evidence if ev.kind == EvidenceKind.DEPLOY and ev.timestamp),
                     key=lambda ev: (aware(ev.timestamp or onset), ev.id))
    out: list[ChangeSignal] = []
    for i, ev in enumerate(deploys):
        at = aware(ev.timestamp or onset)
        env = str(ev.data.get("environment") or "") or None
        if env and env.lower() not in PROD_ENVS:
            continue  # a staging deploy does not break production
        sha = str(ev.data.get("sha") or ev.ref.get("sha") or "")[:7]
        ref = quote_untrusted(str(ev.data.get("ref") or ""), 40)
        name = f"{ref} ({sha})" if ref and sha else ref or sha or (quote_untrusted(ev.title, 60) or ev.id)
        # The version to go back to is the last one that went out: a failed deployment leaves
        # the version before it serving, so it is never the rollback target.
        same_env = [p for p in deploys[:i] if p.data.get("environment") == ev.data.get("environment")
                    and not _deploy_failed(p)]
        previous = same_env[-1] if same_env else None
        change = _change(ev, "deploy", at, onset, name, _deploy_detail(ev), env,
                         previous.id if previous else None, _deploy_failed(ev))
        out.append(_with_content(change, ev, symptom))
    for ev in evidence:
        if ev.kind != EvidenceKind.EVENT or ev.timestamp is None:
            continue
        kind = _event_kind(ev)
        title = quote_untrusted(_event_title(ev, kind), 90)
        if kind is None or title is None:
            continue
        change = _change(ev, kind, aware(ev.timestamp), onset, title, None, None, None, False)
        out.append(_with_content(change, ev, symptom))
    out.sort(key=lambda c: (-c.proximity, abs(c.minutes_before_onset), c.evidence_id))
    return out


def _with_content(change: ChangeSignal, ev: Evidence, symptom: set[str]) -> ChangeSignal:
    files = [str(p) for p in ev.data.get("files") or [] if isinstance(p, str)]
    pulls = [pr for pr in ev.data.get("pull_requests") or [] if isinstance(pr, dict)]
    labels = list(dict.fromkeys(str(label) for pr in pulls for label in pr.get("labels") or []))
    titles = [str(pr.get("title") or "") for pr in pulls] + [str(ev.data.get("description") or "")]
    title = str(ev.ref.get("title") or ev.title)
    text = change_text(ev.data, title)
    forms = surface_forms(text)
    # Matched on stems, said as the change spelled them ("engine", not "engin").
    matched = [forms.get(word, word) for word in content_match(words(text), symptom)]
    # The reason is shown in the brief: only safely quoted titles and paths go into it, and text
    # that addresses the bot is dropped (quote_untrusted returns None for it).
    safe_titles = [q for q in (quote_untrusted(t, 60) for t in titles) if q]
    safe_files = [q for q in (quote_untrusted(p, 80) for p in files) if q]
    inert = inert_reason(safe_files, labels, safe_titles) if change.kind == "deploy" and len(
        safe_files) == len(files) else None
    safe = [w for w in (quote_untrusted(m, 40) for m in matched) if w]
    return change.model_copy(update={"files": files[:20], "labels": labels[:10], "content_match": safe,
                                     "inert": None if safe and not files else inert})


def _deploy_failed(ev: Evidence) -> bool:
    return str(ev.data.get("status") or "").lower() in {"failure", "error"}



def _event_title(ev: Evidence, kind: Literal["deploy", "config", "batch"] | None) -> str:
    """The event's own title without the labels the connector or the emitter put in front
    ("Event: Config change: pool max 50 -> 5" reads "pool max 50 -> 5" next to "config change")."""
    title = str(ev.ref.get("title") or ev.title)
    for _ in range(2):
        stripped = KIND_PREFIX.sub("", title)
        if stripped == title or not stripped.strip():
            break
        title = stripped
    return title


def _change(ev: Evidence, kind: Literal["deploy", "config", "batch"], at: datetime, onset: datetime, name: str,
            detail: str | None, env: str | None, previous: str | None, failed: bool) -> ChangeSignal:
    minutes = (onset - at).total_seconds() / 60
    return ChangeSignal(evidence_id=ev.id, kind=kind, at=at, name=name, detail=detail, environment=env,
                        minutes_before_onset=minutes, proximity=proximity(minutes), previous_id=previous,
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
        number = as_int(pr.get("number"))
        if title and title.lower() != (description or "").lower():
            parts.append(f"PR #{number} “{title}”" if number else f"PR “{title}”")
        elif number:
            parts.append(f"PR #{number}")
    return ", ".join(parts) or None

