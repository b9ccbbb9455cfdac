"""A model's stated confidence held to what the analysis can show (pure: no I/O).

Models are confidently wrong often enough that an on-call engineer at 3 a.m. must not read
"high confidence" where the evidence does not carry it. The analyser's rule is the yardstick
(`bot.analyse`): `high` only when a suspect's timing and content both agree with the symptom.
So each cause a model names is capped at what the analysis found for the same suspect:

- a suspect the analysis set aside (a change after the onset, a docs-only deploy) is `low`, and
  the brief says why it was set aside;
- a suspect the analysis ranked is capped at the confidence the analysis gave it;
- a suspect the analysis did not consider is capped at `medium`: the model may have seen
  something real, but nothing deterministic corroborates it.

A cause is only ever lowered, never raised, and each lowering is said in the brief's notes, so
the reader knows the model said more than the evidence shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.analyse.signals import CauseHypothesis, Signals
from bot.core.models import Brief, CauseKind, Confidence, LikelyCause

_RANK = {Confidence.LOW: 0, Confidence.MEDIUM: 1, Confidence.HIGH: 2}
UNCORROBORATED_CEILING = Confidence.MEDIUM
CHANGE_KINDS = frozenset({CauseKind.DEPLOY, CauseKind.CONFIG})


@dataclass(frozen=True)
class Ceiling:
    confidence: Confidence
    why: str


@dataclass(frozen=True)
class Calibrated:
    brief: Brief
    notes: list[str] = field(default_factory=list)


def calibrate(brief: Brief, signals: Signals) -> Calibrated:
    """`brief` with each likely cause's confidence lowered to its ceiling, and a note per lowering."""
    causes: list[LikelyCause] = []
    notes: list[str] = []
    for n, cause in enumerate(brief.likely_causes, start=1):
        ceiling = cause_ceiling(cause, signals)
        if _RANK[cause.confidence] > _RANK[ceiling.confidence]:
            notes.append(f"Likely cause {n}: the model said {cause.confidence.value} confidence, lowered to "
                         f"{ceiling.confidence.value}: {ceiling.why}.")
            cause = cause.model_copy(update={"confidence": ceiling.confidence})
        causes.append(cause)
    if not notes:
        return Calibrated(brief)
    return Calibrated(brief.model_copy(update={"likely_causes": causes}), notes)


def cause_ceiling(cause: LikelyCause, signals: Signals) -> Ceiling:
    """The most confidence the analysis supports for the suspect this cause cites."""
    cited = set(cause.claim.citations)
    if cause.kind == CauseKind.UNKNOWN:  # "no clear cause" claims nothing to be held to
        return Ceiling(Confidence.HIGH, "")
    shared = _shared(signals)
    ranked = [h for h in signals.hypotheses if _same_suspect(h, cause.kind, cited, shared)]
    # A cause of another kind may cite a suspect set aside as what it is not ("Stripe, not the copy deploy").
    set_aside = [down for down in signals.ranked_down if down.evidence_id in cited and (
        down.kind == cause.kind or {down.kind, cause.kind} <= CHANGE_KINDS)]
    if set_aside and not any(h.subject in cited for h in ranked):
        down = set_aside[0]
        return Ceiling(Confidence.LOW, f"the analysis set {down.name} aside ({down.reason})")
    if ranked:
        best = max(ranked, key=lambda h: _RANK[h.confidence])
        return Ceiling(best.confidence, f"the analysis rates this {best.kind.value} cause "
                                        f"{best.confidence.value} ({best.summary})")
    return Ceiling(UNCORROBORATED_CEILING,
                   "the analysis found no suspect whose timing and content both agree with it")


def _same_suspect(hypothesis: CauseHypothesis, kind: CauseKind, cited: set[str], shared: set[str]) -> bool:
    """The cause names this candidate: it cites the candidate's own suspect (a change's
    evidence, a traffic metric), or, for a dependency or capacity cause, is of its kind and
    cites its evidence. A change is named by its own evidence only, and evidence every candidate
    leans on (the symptom) never makes two causes the same."""
    if hypothesis.kind == CauseKind.UNKNOWN:
        return False
    if hypothesis.subject is not None and hypothesis.subject in cited:
        return True
    if hypothesis.kind in CHANGE_KINDS:
        return False
    return hypothesis.kind == kind and bool(cited & (set(hypothesis.evidence_ids) - shared))


def _shared(signals: Signals) -> set[str]:
    # Only the symptom: what dated the onset may be the suspect's own evidence (a dependency's
    # latency step, its timeout log).
    return {signals.symptom.evidence_id} if signals.symptom else set()
