"""The offline analysis as evidence for the model: each ranked candidate cause is one evidence
block of its own, with an id the model may cite, so a model builds on the analyser's answer
(and its reasons) instead of starting over.

`analysis_notes` is the one place the analysis is rendered for the model: each candidate with
its reasons for and against and when it began, and on the first note the suspects the analyser
ranked down with why ("changed only footer copy", "landed 2 min after the errors began").
The notes are data like every evidence block: quoted between the same delimiters,
with text that came from evidence already made safe by the analyser and quoted again here.

A citation of a note stands for the evidence that candidate rests on: the gateway's citation
check accepts it, and `expand_analysis` replaces it by those evidence ids before the brief is
checked and kept, so the brief a person reads (and the store keeps) cites primary sources
only, every one of them gathered evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.analyse.signals import CauseHypothesis, Signals
from bot.core.models import Brief, Claim

ANALYSIS_KIND = "analysis"
ANALYSIS_SOURCE = "analyser"
MAX_NOTES = 3  # the candidates a person would read; the rest are the analyser's long tail
MAX_RANKED_DOWN = 5  # suspects set aside, listed on the first note with the reason


@dataclass(frozen=True)
class AnalysisNote:
    """One ranked candidate of the offline analysis, as the model sees it."""

    id: str
    rank: int
    title: str
    body: str
    rests_on: tuple[str, ...]  # the evidence ids a citation of this note stands for


def note_id(hypothesis: CauseHypothesis, rank: int) -> str:
    """Stable for the same analysis (an unchanged Refresh keeps its cache key), distinct per rank."""
    native = f"{rank}|{hypothesis.kind.value}|{hypothesis.summary}|{','.join(hypothesis.evidence_ids)}"
    return f"{ANALYSIS_KIND}-{hashlib.sha1(native.encode(), usedforsecurity=False).hexdigest()[:6]}"


def analysis_notes(signals: Signals, known: Collection[str]) -> list[AnalysisNote]:
    """The ranked candidates as evidence blocks, resting only on evidence that was gathered
    (`known`): a note can never launder an id that does not exist."""
    ranked = signals.hypotheses[:MAX_NOTES]
    notes: list[AnalysisNote] = []
    for rank, hypothesis in enumerate(ranked, start=1):
        rests_on = tuple(cid for cid in dict.fromkeys(hypothesis.evidence_ids) if cid in known)
        lines = [
            f"cause_kind: {hypothesis.kind.value}",
            f"confidence: {hypothesis.confidence.value} (score {hypothesis.score:.2f})",
            f"why: {hypothesis.summary}",
            *(f"reason: {reason}" for reason in hypothesis.reasons),
            *([f"began: {_iso(hypothesis.at)}"] if hypothesis.at is not None else []),
            f"incident onset: {_iso(signals.onset)} (dated by the {signals.onset_basis})",
            f"rests on evidence: {', '.join(rests_on) or 'none'}",
        ]
        if rank > 1:
            lines.append(f"ranked below candidate 1 ({ranked[0].kind.value}, {ranked[0].confidence.value})")
        if rank == 1:
            # The suspects set aside, and why, so a model does not put them back without cause.
            lines += [f"ranked down: {down.name} ({down.kind.value}): {down.reason}"
                      for down in signals.ranked_down[:MAX_RANKED_DOWN]]
        notes.append(AnalysisNote(
            id=note_id(hypothesis, rank), rank=rank,
            title=f"offline analysis, candidate {rank} of {len(ranked)}: {hypothesis.kind.value} cause, "
                  f"{hypothesis.confidence.value} confidence",
            body="\n".join(lines), rests_on=rests_on))
    return notes


def expand_analysis(brief: Brief, notes: Sequence[AnalysisNote]) -> Brief:
    """Every citation of a note replaced by the evidence that note rests on, in place, once
    each; other citations untouched. A note resting on nothing expands to nothing, so a claim
    citing only it is uncited and the citation check says so."""
    if not notes:
        return brief
    stands_for = {note.id: note.rests_on for note in notes}

    def ids(citations: list[str]) -> list[str]:
        out: list[str] = []
        for cid in citations:
            out += stands_for.get(cid, (cid,))
        return list(dict.fromkeys(out))

    def claim(c: Claim) -> Claim:
        expanded = ids(c.citations)
        return c if expanded == c.citations else c.model_copy(update={"citations": expanded})

    update: dict[str, object] = {
        "headline": claim(brief.headline), "impact": claim(brief.impact),
        "likely_causes": [c.model_copy(update={"claim": claim(c.claim)}) for c in brief.likely_causes],
        "timeline": [t.model_copy(update={"claim": claim(t.claim)}) for t in brief.timeline],
        "next_actions": [claim(a) for a in brief.next_actions],
    }
    if brief.ticket is not None:
        update["ticket"] = brief.ticket.model_copy(update={"citations": ids(brief.ticket.citations)})
    return brief.model_copy(update=update)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
