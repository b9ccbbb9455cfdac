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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.models import Brief, Claim, Evidence, LikelyCause, TimelineEntry

UNSUPPORTED_PREFIX = "Unsupported by gathered evidence: "


@dataclass(frozen=True)
class CitationCheck:
    brief: Brief
    coverage: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _clean(claim: Claim, known: set[str], where: str, problems: list[str]) -> Claim:
    valid = [cid for cid in dict.fromkeys(claim.citations) if cid in known]
    unknown = [cid for cid in claim.citations if cid not in known]
    if unknown:
        problems.append(f"{where}: cites unknown evidence {', '.join(sorted(set(unknown)))}")
    return claim if valid == claim.citations else claim.model_copy(update={"citations": valid})


def validate_brief(brief: Brief, evidence: list[Evidence]) -> CitationCheck:
    known = {item.id for item in evidence}
    problems: list[str] = []
    total = len(brief.claims())
    supported = 0

    def check(claim: Claim, where: str) -> Claim:
        nonlocal supported
        cleaned = _clean(claim, known, where, problems)
        if cleaned.citations:
            supported += 1
        return cleaned

    headline = check(brief.headline, "headline")
    impact = check(brief.impact, "impact")
    for name, claim in (("headline", headline), ("impact", impact)):
        if not claim.citations and not claim.text.startswith(UNSUPPORTED_PREFIX):
            problems.append(f"{name}: no valid citation")
    if not headline.citations and not headline.text.startswith(UNSUPPORTED_PREFIX):
        headline = headline.model_copy(update={"text": UNSUPPORTED_PREFIX + headline.text})
    if not impact.citations and not impact.text.startswith(UNSUPPORTED_PREFIX):
        impact = impact.model_copy(update={"text": UNSUPPORTED_PREFIX + impact.text})

    causes: list[LikelyCause] = []
    for index, cause in enumerate(brief.likely_causes):
        claim = check(cause.claim, f"likely_causes[{index}]")
        if claim.citations:
            causes.append(cause.model_copy(update={"claim": claim}))
        else:
            problems.append(f"likely_causes[{index}]: dropped, no valid citation")

    timeline: list[TimelineEntry] = []
    for index, entry in enumerate(brief.timeline):
        claim = check(entry.claim, f"timeline[{index}]")
        if claim.citations:
            timeline.append(entry.model_copy(update={"claim": claim}))
        else:
            problems.append(f"timeline[{index}]: dropped, no valid citation")

    actions: list[Claim] = []
    for index, action in enumerate(brief.next_actions):
        claim = check(action, f"next_actions[{index}]")
        if claim.citations:
            actions.append(claim)
        else:
            problems.append(f"next_actions[{index}]: dropped, no valid citation")

    ticket = brief.ticket
    if ticket is not None:
        valid = [cid for cid in dict.fromkeys(ticket.citations) if cid in known]
        if len(valid) != len(ticket.citations):
            problems.append("ticket: cites unknown evidence")
        ticket = ticket.model_copy(update={"citations": valid}) if valid else None
        if ticket is None:
            problems.append("ticket: withdrawn, no valid citation")

    notes = list(brief.notes)
    if problems:
        notes.append(f"Citation check: {len(problems)} problem(s) fixed; unsupported claims were removed.")
    checked = brief.model_copy(update={
        "headline": headline, "impact": impact, "likely_causes": causes, "timeline": timeline,
        "next_actions": actions, "ticket": ticket, "notes": notes,
    })
    return CitationCheck(brief=checked, coverage=supported / total if total else 1.0, problems=problems)
