"""Citation validation: every claim must rest on evidence that exists. Pure.

Whatever drafted the brief (the offline drafter or a model through the gateway), its claims
are checked against the evidence actually gathered:

- a citation to an id that is not in the evidence is removed (and noted);
- a cause, timeline entry or next action left with no valid citation is dropped (and noted):
  an unsupported claim is worse than a missing one at 3 a.m.;
- the headline and impact are required, so an uncited one is kept but rewritten to say it
  is unsupported rather than silently asserted;
- a ticket proposal whose citations do not all exist loses the bad ones, and one with none
  left is withdrawn (it could not be approved on evidence).

`coverage` is the share of the original claims that had at least one valid citation.

This is the one place "every claim cited, every id known" is decided: the flow fixes a brief
with it after drafting, and the model path sends its claim problems back to the model for
repair (`bot.gateway.drafter.brief_problems`) before accepting an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bot.core.models import Brief, Claim, Evidence

UNSUPPORTED_PREFIX = "Unsupported by gathered evidence: "
T = TypeVar("T")


@dataclass(frozen=True)
class CitationCheck:
    brief: Brief  # the brief with unsupported claims removed or marked
    coverage: float
    claim_problems: list[str] = field(default_factory=list)  # headline, impact, causes, timeline, actions
    ticket_problems: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [*self.claim_problems, *self.ticket_problems]

    @property
    def ok(self) -> bool:
        return not self.problems


def unknown_ids(citations: Iterable[str], known: Collection[str]) -> list[str]:
    """The cited ids that name no gathered evidence, in order, once each."""
    return [cid for cid in dict.fromkeys(citations) if cid not in known]


def _clean(claim: Claim, known: Collection[str], where: str, problems: list[str]) -> Claim:
    unknown = unknown_ids(claim.citations, known)
    valid = [cid for cid in dict.fromkeys(claim.citations) if cid not in unknown]
    if unknown:
        problems.append(f"{where}: cites unknown evidence {', '.join(sorted(set(unknown)))}")
    return claim if valid == claim.citations else claim.model_copy(update={"citations": valid})


def validate_brief(brief: Brief, evidence: list[Evidence]) -> CitationCheck:
    """The brief checked against the evidence gathered for it."""
    return check_citations(brief, {item.id for item in evidence})


def check_citations(brief: Brief, known: Collection[str]) -> CitationCheck:
    """The brief checked against the evidence ids in `known` (all gathered, or those a model was shown)."""
    problems: list[str] = []
    total = len(brief.claims())
    supported = 0

    def check(claim: Claim, where: str) -> Claim:
        nonlocal supported
        cleaned = _clean(claim, known, where, problems)
        if cleaned.citations:
            supported += 1
        return cleaned

    def required(claim: Claim, where: str) -> Claim:
        """Headline and impact cannot be dropped: an unsupported one says so instead."""
        cleaned = check(claim, where)
        if cleaned.citations or cleaned.text.startswith(UNSUPPORTED_PREFIX):
            return cleaned
        problems.append(f"{where}: no valid citation")
        return cleaned.model_copy(update={"text": UNSUPPORTED_PREFIX + cleaned.text})

    def kept(items: Sequence[T], where: str, claim_of: Callable[[T], Claim],
             rebuild: Callable[[T, Claim], T]) -> list[T]:
        """The items whose claim keeps a valid citation; the others are dropped and noted."""
        out: list[T] = []
        for index, item in enumerate(items):
            original = claim_of(item)
            claim = check(original, f"{where}[{index}]")
            if claim.citations:
                # Unchanged claims keep their object: the model path checks every answer, and
                # rebuilding a clean brief would cost more than checking it.
                out.append(item if claim is original else rebuild(item, claim))
            else:
                problems.append(f"{where}[{index}]: dropped, no valid citation")
        return out

    headline = required(brief.headline, "headline")
    impact = required(brief.impact, "impact")
    causes = kept(brief.likely_causes, "likely_causes", lambda c: c.claim,
                  lambda c, claim: c.model_copy(update={"claim": claim}))
    timeline = kept(brief.timeline, "timeline", lambda e: e.claim,
                    lambda e, claim: e.model_copy(update={"claim": claim}))
    actions = kept(brief.next_actions, "next_actions", lambda a: a, lambda _a, claim: claim)

    ticket = brief.ticket
    ticket_problems: list[str] = []
    if ticket is not None:
        unknown = unknown_ids(ticket.citations, known)
        valid = [cid for cid in dict.fromkeys(ticket.citations) if cid not in unknown]
        if unknown or len(valid) != len(ticket.citations):
            ticket_problems.append("ticket: cites unknown evidence")
        if valid != ticket.citations:
            ticket = ticket.model_copy(update={"citations": valid}) if valid else None
        if ticket is None:
            ticket_problems.append("ticket: withdrawn, no valid citation")

    unchanged = (headline is brief.headline and impact is brief.impact and ticket is brief.ticket
                 and _same(causes, brief.likely_causes) and _same(timeline, brief.timeline)
                 and _same(actions, brief.next_actions))
    notes = list(brief.notes)
    if problems or ticket_problems:
        count = len(problems) + len(ticket_problems)
        notes.append(f"Citation check: {count} problem(s) fixed; unsupported claims were removed.")
    checked = brief if unchanged and not (problems or ticket_problems) else brief.model_copy(update={
        "headline": headline, "impact": impact, "likely_causes": causes, "timeline": timeline,
        "next_actions": actions, "ticket": ticket, "notes": notes,
    })
    return CitationCheck(brief=checked, coverage=supported / total if total else 1.0, claim_problems=problems,
                         ticket_problems=ticket_problems)


def _same(kept: Sequence[object], original: Sequence[object]) -> bool:
    return len(kept) == len(original) and all(a is b for a, b in zip(kept, original, strict=True))
