"""Runbook pages read for the brief: which page fits the alert best, and its steps in order."""

from __future__ import annotations

import re

from bot.analyse.relevance import words
from bot.analyse.signals import RunbookMatch
from bot.analyse.values import aware
from bot.analyse.vocabulary import tokens
from bot.analyse.weights import RUNBOOK
from bot.core.models import Alert, Evidence, EvidenceKind, ServiceEntry
from bot.core.untrusted import quote_untrusted

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


def best_runbook(evidence: list[Evidence], alert: Alert, service: ServiceEntry,
                 failing: set[str] | None = None) -> RunbookMatch | None:
    """The runbook page that fits this alert best (`weights.RUNBOOK`), with its first steps.
    `failing` (`bot.analyse.relevance.words` of the error text and the dependencies involved)
    favours the page about what is actually failing over one that only names the service; a
    page untouched for years yields to a current one (but is still shown when it is the only one)."""
    # The alert's own words, not the service's name: the label and title terms already count
    # that, and counting it a third time let any page titled with the service beat the page
    # about the failure.
    wanted = tokens(alert.title) - tokens(service.name) or tokens(alert.title)
    best: tuple[float, RunbookMatch] | None = None
    for ev in evidence:
        if ev.kind != EvidenceKind.RUNBOOK:
            continue
        labels = [str(label).lower() for label in ev.data.get("labels") or []]
        title = ev.title.lower()
        score = 0.0
        score += RUNBOOK.service_label if service.name.lower() in labels else 0.0
        score += RUNBOOK.service_in_title if service.name.lower() in title else 0.0
        score += RUNBOOK.runbook_label if {"runbook", "playbook"} & set(labels) or "runbook" in title else 0.0
        overlap = len(wanted & tokens(f"{ev.title} {ev.excerpt}")) / max(len(wanted), 1)
        score += RUNBOOK.words_shared * overlap
        raw = ev.data.get("score")
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0:
            score += RUNBOOK.search_score * min(float(raw), 1.0)
        if failing:
            hits = len(failing & words(f"{ev.title} {ev.excerpt}"))
            score += RUNBOOK.failure_words * min(hits, RUNBOOK.failure_words_enough) / RUNBOOK.failure_words_enough
        if score < RUNBOOK.threshold:
            continue
        rank = score - (RUNBOOK.stale_penalty if _stale(ev, alert) else 0.0)
        match = RunbookMatch(evidence_id=ev.id, title=quote_untrusted(ev.title, 80) or "runbook",
                             score=round(score, 3), steps=runbook_steps(ev.excerpt))
        if best is None or (rank, -len(match.evidence_id)) > (best[0], -len(best[1].evidence_id)):
            best = (rank, match)
    return best[1] if best else None


def _stale(ev: Evidence, alert: Alert) -> bool:
    """Last edited long before the alert: written for a system that may since have changed."""
    if ev.timestamp is None:
        return False
    return (aware(alert.triggered_at) - aware(ev.timestamp)).days > RUNBOOK.stale_after_days
