"""Citation validation: unknown ids are removed, claims left without support are dropped (or,
for the required headline and impact, kept and flagged), and coverage is measured."""

from __future__ import annotations

from bot.core.models import (
    Brief,
    CauseKind,
    Claim,
    Confidence,
    Evidence,
    LikelyCause,
    Source,
    SourceGap,
    TicketProposal,
    TimelineEntry,
)
from bot.draft.citations import UNSUPPORTED_PREFIX, validate_brief
from tests.helpers.evidence import ALERT_AT, ERRORS, at, deploy, log, metric

EVIDENCE: list[Evidence] = [
    metric(ERRORS, [(-999, 0.3), (-2, 9.5)]),
    log("NullPointerException at PriceCalculator", 340, -2),
    deploy("9f1c2ab", "v2.3.1", -3),
]
METRIC, NPE, DEPLOY = (e.id for e in EVIDENCE)
GHOST = "deploy-000000"  # an id no source produced (a model's invention)


def _brief(**changes: object) -> Brief:
    base = Brief(
        headline=Claim(text="checkout-api: errors up; likely deploy v2.3.1.", citations=[METRIC, DEPLOY]),
        impact=Claim(text="Errors rose 30x.", citations=[METRIC]),
        likely_causes=[LikelyCause(kind=CauseKind.DEPLOY, confidence=Confidence.HIGH,
                                   claim=Claim(text="Deploy v2.3.1 then NPEs.", citations=[DEPLOY, NPE]))],
        timeline=[TimelineEntry(at=at(-3), claim=Claim(text="Deploy v2.3.1.", citations=[DEPLOY])),
                  TimelineEntry(at=ALERT_AT, claim=Claim(text="Alert fired.", citations=[METRIC]))],
        next_actions=[Claim(text="Roll back v2.3.1.", citations=[DEPLOY])],
        gaps=[SourceGap(source=Source.CONFLUENCE, reason="HTTP 500")],
        ticket=TicketProposal(project="CHK", summary="checkout-api errors", description="...",
                              citations=[METRIC, DEPLOY]),
    )
    return base.model_copy(update=changes)


def test_a_fully_cited_brief_passes_unchanged() -> None:
    brief = _brief()
    check = validate_brief(brief, EVIDENCE)
    assert check.problems == []
    assert check.ok
    assert check.coverage == 1.0
    assert check.brief == brief


def test_unknown_ids_are_removed_and_named() -> None:
    brief = _brief(impact=Claim(text="Errors rose 30x.", citations=[GHOST, METRIC, METRIC]))
    check = validate_brief(brief, EVIDENCE)
    assert check.brief.impact.citations == [METRIC]
    assert check.brief.impact.text == "Errors rose 30x."
    assert check.problems == [f"impact: cites unknown evidence {GHOST}"]
    assert check.coverage == 1.0  # the claim still rests on real evidence
    assert check.brief.notes[-1].startswith("Citation check: 1 problem(s)")


def test_claims_left_without_valid_citations_are_dropped() -> None:
    brief = _brief(
        likely_causes=[
            LikelyCause(kind=CauseKind.CONFIG, confidence=Confidence.HIGH,
                        claim=Claim(text="A config change nobody recorded.", citations=[GHOST])),
            LikelyCause(kind=CauseKind.DEPLOY, confidence=Confidence.MEDIUM,
                        claim=Claim(text="Deploy v2.3.1.", citations=[DEPLOY])),
        ],
        timeline=[TimelineEntry(at=at(-3), claim=Claim(text="Something happened.", citations=[]))],
        next_actions=[Claim(text="Restart everything.", citations=[GHOST]),
                      Claim(text="Roll back v2.3.1.", citations=[DEPLOY])],
    )
    check = validate_brief(brief, EVIDENCE)
    assert [c.kind for c in check.brief.likely_causes] == [CauseKind.DEPLOY]
    assert check.brief.timeline == []
    assert [a.text for a in check.brief.next_actions] == ["Roll back v2.3.1."]
    assert "likely_causes[0]: dropped, no valid citation" in check.problems
    assert "timeline[0]: dropped, no valid citation" in check.problems
    assert "next_actions[0]: dropped, no valid citation" in check.problems
    # 7 claims (headline, impact, 2 causes, 1 entry, 2 actions); 4 had a valid citation.
    assert check.coverage == 4 / 7
    assert check.brief.gaps == brief.gaps  # gaps are never touched


def test_a_required_claim_without_support_is_kept_but_flagged() -> None:
    brief = _brief(headline=Claim(text="checkout-api is down because of DNS.", citations=[GHOST]))
    check = validate_brief(brief, EVIDENCE)
    assert check.brief.headline.text == UNSUPPORTED_PREFIX + "checkout-api is down because of DNS."
    assert check.brief.headline.citations == []
    assert "headline: no valid citation" in check.problems
    assert check.coverage == 5 / 6


def test_validation_is_idempotent() -> None:
    brief = _brief(headline=Claim(text="Unsupported guess.", citations=[]),
                   next_actions=[Claim(text="Do a thing.", citations=[GHOST])])
    once = validate_brief(brief, EVIDENCE)
    twice = validate_brief(once.brief, EVIDENCE)
    assert twice.problems == []
    assert twice.brief == once.brief
    assert twice.brief.headline.text.count(UNSUPPORTED_PREFIX) == 1


def test_a_ticket_loses_unknown_ids_and_is_withdrawn_with_none_left() -> None:
    partly = _brief(ticket=TicketProposal(project="CHK", summary="s", description="d", citations=[GHOST, DEPLOY]))
    check = validate_brief(partly, EVIDENCE)
    assert check.brief.ticket is not None
    assert check.brief.ticket.citations == [DEPLOY]
    assert "ticket: cites unknown evidence" in check.problems

    unsupported = _brief(ticket=TicketProposal(project="CHK", summary="s", description="d", citations=[GHOST]))
    check = validate_brief(unsupported, EVIDENCE)
    assert check.brief.ticket is None
    assert "ticket: withdrawn, no valid citation" in check.problems


def test_no_evidence_at_all_means_zero_coverage_and_nothing_but_the_required_claims() -> None:
    check = validate_brief(_brief(), [])
    assert check.coverage == 0.0
    assert check.brief.likely_causes == []
    assert check.brief.timeline == []
    assert check.brief.next_actions == []
    assert check.brief.ticket is None
    assert check.brief.headline.text.startswith(UNSUPPORTED_PREFIX)
    assert check.brief.impact.text.startswith(UNSUPPORTED_PREFIX)
