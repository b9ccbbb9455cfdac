"""checkout-5xx-after-deploy as the evals see it: evidence the connectors would derive from the
scenario's world (`Evidence.ref` per the conventions in `bot.core.models`), a brief a careful
on-call engineer would accept, and the `BriefResult` around them. Built by hand, never by the
drafter, so the scorer and eval-runner tests pin the scorers and the runner alone."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.models import (
    Brief,
    BriefResult,
    CauseKind,
    Claim,
    Confidence,
    Evidence,
    EvidenceKind,
    LikelyCause,
    Provenance,
    Source,
    SourceGap,
    TicketProposal,
    TimelineEntry,
    evidence_id,
)

FETCHED = datetime(2026, 5, 12, 14, 5, tzinfo=UTC)

SOURCE_OF = {
    EvidenceKind.DEPLOY: Source.GITHUB, EvidenceKind.RUNBOOK: Source.CONFLUENCE,
    EvidenceKind.JIRA_ISSUE: Source.JIRA, EvidenceKind.INCIDENT: Source.PAGERDUTY,
}


def ev(kind: EvidenceKind, native: str, ref: dict[str, str], *, title: str = "", excerpt: str = "",
       data: dict[str, object] | None = None) -> Evidence:
    source = SOURCE_OF.get(kind, Source.DATADOG)
    return Evidence(
        id=evidence_id(kind, native), kind=kind, source=source, title=title or native, excerpt=excerpt,
        provenance=Provenance(system=source, tool=f"{source.value}.read", request="GET /", fetched_at=FETCHED),
        ref=ref, data=data or {},
    )


# Evidence as the connectors would derive it from checkout-5xx-after-deploy's world.
ERR_QUERY = "sum:trace.http.request.errors{service:checkout-api,env:prod}.as_rate()"
NPE_SAMPLE = "NullPointerException at PriceCalculator.applyDiscount(PriceCalculator.java:88)"
BAD_DEPLOY = ev(EvidenceKind.DEPLOY, "acme/checkout-api#1",
                {"sha": "9f1c2ab0d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9", "deployment_id": "1"},
                title="Deploy v2.3.1: Bump pricing-lib 4.1 -> 4.2")
OLD_DEPLOY = ev(EvidenceKind.DEPLOY, "acme/checkout-api#0", {"sha": "77aa010", "deployment_id": "0"},
                title="Deploy v2.3.0")
NPE = ev(EvidenceKind.LOG_PATTERN, "checkout-api|prod|npe", {"sample": NPE_SAMPLE}, title=NPE_SAMPLE,
         data={"template": "NullPointerException at PriceCalculator.applyDiscount(PriceCalculator.java:<NUM>)"})
RUNBOOK = ev(EvidenceKind.RUNBOOK, "98001", {"page_id": "98001"}, title="checkout-api: elevated 5xx")
ERRORS = ev(EvidenceKind.METRIC, ERR_QUERY, {"query": ERR_QUERY}, title="5xx rate 0.3/s -> 9.5/s")
MONITOR = ev(EvidenceKind.MONITOR, "4101", {"monitor_id": "4101"}, title="checkout-api 5xx rate")
FLAG = ev(EvidenceKind.EVENT, "flag", {"event_id": "ddev-1",
                                       "title": "Feature flag new-checkout-ui enabled for 10% of users"})
EVIDENCE = [BAD_DEPLOY, OLD_DEPLOY, NPE, RUNBOOK, ERRORS, MONITOR, FLAG]


def good_brief(**changes: object) -> Brief:
    """A brief a careful on-call engineer would accept for checkout-5xx-after-deploy."""
    base = Brief(
        headline=Claim(text="checkout-api 5xx after deploy v2.3.1 (pricing-lib bump)",
                       citations=[ERRORS.id, BAD_DEPLOY.id]),
        impact=Claim(text="5xx rate went from 0.3/s to 9.5/s", citations=[ERRORS.id, MONITOR.id]),
        likely_causes=[
            LikelyCause(kind=CauseKind.DEPLOY, confidence=Confidence.HIGH,
                        claim=Claim(text="Deploy v2.3.1 bumped pricing-lib; NPEs in PriceCalculator follow",
                                    citations=[BAD_DEPLOY.id, NPE.id])),
            LikelyCause(kind=CauseKind.CONFIG, confidence=Confidence.LOW,
                        claim=Claim(text="A flag changed three hours earlier", citations=[FLAG.id])),
        ],
        timeline=[TimelineEntry(at=datetime(2026, 5, 12, 13, 57, tzinfo=UTC),
                                claim=Claim(text="Deploy v2.3.1", citations=[BAD_DEPLOY.id]))],
        next_actions=[Claim(text="Roll back per the runbook", citations=[RUNBOOK.id])],
        ticket=TicketProposal(project="CHK", summary="checkout-api 5xx after v2.3.1", description="Roll back.",
                              citations=[BAD_DEPLOY.id]),
    )
    return base.model_copy(update=changes)


def result(brief: Brief | None = None, evidence: list[Evidence] | None = None,
           gaps: list[SourceGap] | None = None) -> BriefResult:
    return BriefResult(brief=brief or good_brief(), evidence=EVIDENCE if evidence is None else evidence,
                       gaps=gaps or [])
