"""Log-pattern evidence read as signals: new or spiking error patterns, what they blame, and
whether they read like instructions to the bot (then they are counted, never quoted)."""

from __future__ import annotations

from typing import Literal

from bot.analyse.relevance import words
from bot.analyse.signals import LogSignal
from bot.analyse.values import as_int, aware, parse_time
from bot.analyse.vocabulary import (
    CERT_EXPIRED,
    DISK_EXHAUSTED,
    DNS_FAILURE,
    MEMORY_EXHAUSTED,
    POOL_EXHAUSTED,
    THREADS_EXHAUSTED,
    TIMEOUT_LIKE,
    find_host,
    find_upstream,
    find_vendor,
)
from bot.core.models import Evidence, EvidenceKind, TimeWindow
from bot.core.untrusted import looks_like_instructions, quote_untrusted

MAX_TERMS = 60  # a stack trace's words are bounded: matching needs the telling ones, not all


def log_signals(evidence: list[Evidence], window: TimeWindow) -> list[LogSignal]:
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
        count, before = as_int(ev.data.get("count")), as_int(ev.data.get("count_before"))
        spike = (count / window_min) / (before / baseline_min) if before > 0 else None
        hint: Literal["pool", "memory", "threads", "disk"] | None = (
            "pool" if POOL_EXHAUSTED.search(text) else "memory" if MEMORY_EXHAUSTED.search(text)
            else "threads" if THREADS_EXHAUSTED.search(text) else "disk" if DISK_EXHAUSTED.search(text) else None)
        failure: Literal["dns", "certificate"] | None = (
            "dns" if DNS_FAILURE.search(text) else "certificate" if CERT_EXPIRED.search(text) else None)
        timeout_like = bool(TIMEOUT_LIKE.search(text))
        # The raw sample first: a mined template may have cut a host at a number placeholder.
        host = None if suspicious else (find_host(sample) or find_host(template))
        out.append(LogSignal(
            evidence_id=ev.id, quote=None if suspicious else quote_untrusted(sample or template, 110),
            status=str(ev.data.get("status") or "info"), count=count, count_before=before,
            first_seen=parse_time(ev.data.get("first_seen")) or (
                aware(ev.timestamp) if ev.timestamp else None),
            is_new=before == 0 and count > 0, spike_ratio=spike, suspicious=suspicious,
            upstream=None if suspicious else _upstream(text, host, failure is not None or timeout_like),
            timeout_like=timeout_like, capacity_hint=None if suspicious else hint,
            host=host, failure=None if suspicious else failure,
            terms=[] if suspicious else _first_terms(text)))
    out.sort(key=lambda s: (not s.notable, not s.is_error, -s.count, s.evidence_id))
    return out



def _first_terms(text: str) -> list[str]:
    """The line's words in the order it says them, the first `MAX_TERMS`: a message names what
    failed before its stack frames do."""
    lowered = text.lower()

    def position(term: str) -> int:
        found = lowered.find(term)  # a stem is the start of the word it came from
        return found if found >= 0 else len(lowered)

    return sorted(words(text), key=lambda term: (position(term), term))[:MAX_TERMS]


def _upstream(text: str, host: str | None, failing_call: bool) -> str | None:
    """The dependency a line blames, by the name a reader knows: the technology ("PostgreSQL"),
    else the vendor its host belongs to ("Stripe"), else the host itself when the line is a
    failing call to it (a timeout, a name that does not resolve, an expired certificate). A host
    in a line that is not a failing call may be our own URL, so it names nothing."""
    known = find_upstream(text)
    if known:
        return known
    vendor = find_vendor(host) if host else None
    if vendor:
        return vendor
    return host if host and failing_call else None
