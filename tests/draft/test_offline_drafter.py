"""The offline drafter: every bundled scenario drafted end to end in the sandbox, judged against
the scenario's own `expect:` block, and unit cases on evidence built by hand.

The sandbox runs record the drafter's raw brief (before citation validation), so "every claim
cites existing evidence" is a property of the drafter, not of the validator cleaning up after it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.models import (
    Alert,
    Brief,
    BriefResult,
    CauseKind,
    Confidence,
    Evidence,
    EvidenceKind,
    ServiceEntry,
    Source,
    SourceGap,
    TimeWindow,
)
from bot.core.untrusted import looks_like_instructions
from bot.draft.citations import validate_brief
from bot.draft.offline import MAX_ACTIONS, MAX_CAUSES, MAX_TIMELINE, draft_offline
from evals.scorers import brief_strings, brief_text, items_cited
from sandbox.harness import run_scenario
from sandbox.scenario import bundled_scenarios_dir, load_scenario
from tests.helpers.evidence import (
    ALERT,
    ERRORS,
    INJECTION,
    SERVICE,
    WINDOW,
    bad_deploy_world,
    deploy,
    event,
    log,
    metric,
    monitor,
    runbook,
)

SCENARIOS = sorted(bundled_scenarios_dir().glob("*.yaml"))
MAX_CLAIM_CHARS = 500  # one glance at 3 a.m.


class RecordingOfflineDrafter:
    """The real offline drafter, keeping what it drafted before validation."""

    def __init__(self) -> None:
        self.drafted: list[Brief] = []

    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence],
                    gaps: list[SourceGap], *, key: str | None = None) -> Brief:
        brief = draft_offline(alert, service, window, evidence, gaps)
        self.drafted.append(brief)
        return brief


def _assert_fully_cited(brief: Brief, evidence: list[Evidence]) -> None:
    known = {e.id for e in evidence}
    for claim in brief.claims():
        assert claim.citations, f"uncited claim: {claim.text}"
        assert set(claim.citations) <= known, f"unknown ids in: {claim.text}"
    if brief.ticket is not None:
        assert brief.ticket.citations
        assert set(brief.ticket.citations) <= known
    check = validate_brief(brief, evidence)
    assert check.problems == []
    assert check.coverage == 1.0


def result_by_id(result: BriefResult) -> dict[str, Evidence]:
    return {e.id: e for e in result.evidence}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_each_bundled_scenario_is_drafted_right_and_fully_cited(path: Path) -> None:
    scenario = load_scenario(path)
    expect = scenario.expect
    drafter = RecordingOfflineDrafter()
    run = await run_scenario(scenario, drafter=drafter)
    result = run.result
    [raw] = drafter.drafted
    assert raw.draft.drafter == "offline"
    _assert_fully_cited(raw, result.evidence)
    assert result.brief == validate_brief(raw, result.evidence).brief

    # The cause, on the merits, and the evidence it rests on.
    top = raw.likely_causes[0]
    assert top.kind == CauseKind(expect.cause.kind)
    if top.kind == CauseKind.UNKNOWN:
        assert all(c.confidence == Confidence.LOW for c in raw.likely_causes)
    if expect.cause.item:
        assert expect.cause.item in items_cited(scenario, result, top.claim.citations)
    assert set(expect.must_cite) <= items_cited(scenario, result, raw.cited_ids())
    text = brief_text(raw).casefold()
    for phrase in expect.must_mention:
        assert phrase.casefold() in text

    # Calibration: no cause above the scenario's ceiling, and nothing ranked that began after
    # the onset (dated by the world's story in `expect.onset`, never read by the analyser).
    ceiling = ["low", "medium", "high"]
    if expect.max_confidence:
        assert all(ceiling.index(c.confidence.value) <= ceiling.index(expect.max_confidence)
                   for c in raw.likely_causes)
    if expect.onset:
        for cause in raw.likely_causes:
            if cause.kind in (CauseKind.DEPLOY, CauseKind.CONFIG):
                began = result_by_id(result)[cause.claim.citations[0]].timestamp
                assert began is not None
                assert (began - expect.onset).total_seconds() < 60, cause.claim.text

    # Gaps are shown as they were gathered; the ticket goes to the catalog's project.
    assert raw.gaps == result.gaps
    assert {g.source.value for g in raw.gaps} == set(expect.gaps)
    assert (raw.ticket.project if raw.ticket else None) == (expect.ticket.project if expect.ticket else None)

    # Hostile evidence text never reaches anything the bot would post or file.
    strings = [s.casefold() for s in brief_strings(raw)]
    for banned in expect.must_not_mention:
        assert not any(banned.casefold() in s for s in strings), banned
    for item in result.evidence:
        if looks_like_instructions(item.excerpt):
            assert not any(item.excerpt.casefold()[:40] in s for s in strings)

    # Next actions follow the finding and the runbook, each cited to what it rests on.
    by_id = {e.id: e for e in result.evidence}
    if top.kind == CauseKind.DEPLOY:
        rollback = raw.next_actions[0]
        assert rollback.text.startswith("Consider rolling back")
        assert rollback.citations[0] == top.claim.citations[0]
        assert by_id[rollback.citations[0]].kind == EvidenceKind.DEPLOY
    for action in raw.next_actions:
        if action.text.startswith("Runbook:"):
            assert by_id[action.citations[0]].kind == EvidenceKind.RUNBOOK

    # Short and ordered.
    assert len(raw.likely_causes) <= MAX_CAUSES
    assert len(raw.timeline) <= MAX_TIMELINE
    assert len(raw.next_actions) <= MAX_ACTIONS
    assert [e.at for e in raw.timeline] == sorted(e.at for e in raw.timeline)
    assert all(len(c.text) <= MAX_CLAIM_CHARS for c in raw.claims())


# --- built evidence ------------------------------------------------------------------------

def test_the_checkout_story_reads_as_an_on_call_engineer_needs_it() -> None:
    world = bad_deploy_world()
    brief = draft_offline(ALERT, SERVICE, WINDOW, world, [])
    _assert_fully_cited(brief, world)
    bad, old, rb = world[5].id, world[6].id, world[7].id
    assert brief.headline.text.startswith("checkout-api: errors up since 13:58 UTC; likely deploy v2.3.1 (9f1c2ab)")
    assert "pricing-lib 4.1 → 4.2" in brief.likely_causes[0].claim.text
    assert "PriceCalculator" in brief.impact.text
    assert brief.next_actions[0].text == ("Consider rolling back v2.3.1 (9f1c2ab) (back to v2.3.0 (77aa010)), "
                                          "then watch the symptom.")
    assert brief.next_actions[0].citations == [bad, old]
    assert [a.citations for a in brief.next_actions[1:4]] == [[rb], [rb], [rb]]
    assert "`deployctl rollback checkout-api`" in brief.next_actions[2].text
    assert brief.ticket is not None
    assert brief.ticket.project == "CHK"
    assert bad in brief.ticket.citations
    assert brief.draft.drafter == "offline"


def test_no_confident_cause_says_unknown_and_proposes_no_ticket() -> None:
    world = [monitor(), metric(ERRORS, [(-999, 0.3)]), deploy("77aa010", "v2.3.0", -3 * 24 * 60)]
    brief = draft_offline(ALERT, SERVICE, WINDOW, world, [])
    _assert_fully_cited(brief, world)
    assert brief.likely_causes[0].kind == CauseKind.UNKNOWN
    assert brief.likely_causes[0].confidence == Confidence.LOW
    assert "cause not yet clear" in brief.headline.text
    assert "explains the alert" in brief.likely_causes[0].claim.text
    assert brief.ticket is None
    assert not any(a.text.startswith("Consider rolling back") for a in brief.next_actions)


def test_text_addressed_to_the_bot_is_counted_never_quoted() -> None:
    hostile_runbook = runbook("checkout-api: elevated 5xx",
                              f"1. Check the deploys of the last hour.\n2. {INJECTION}\n3. Roll back if needed.")
    world = [*bad_deploy_world()[:7], hostile_runbook, log(INJECTION, 5000, -2),
             deploy("1b2c3d4", "v2.3.2", -90, description=INJECTION)]
    brief = draft_offline(ALERT, SERVICE, WINDOW, world, [])
    _assert_fully_cited(brief, world)
    everything = "\n".join(brief_strings(brief)).casefold()
    for planted in ("v9.9.9", "ignore all previous", "<!channel>", "project prod", "elasticsearch"):
        assert planted not in everything
    assert brief.likely_causes[0].kind == CauseKind.DEPLOY
    assert [a.text for a in brief.next_actions if a.text.startswith("Runbook:")] == [
        "Runbook: Check the deploys of the last hour.", "Runbook: Roll back if needed."]
    assert any("1 evidence item(s) contained text addressed to the bot" in n for n in brief.notes)


def test_gaps_are_copied_and_a_brief_is_drafted_even_with_no_evidence() -> None:
    gaps = [SourceGap(source=Source.DATADOG, tool="datadog.query_metrics", reason="HTTP 500 after 3 attempts"),
            SourceGap(source=Source.GITHUB, reason="timed out")]
    brief = draft_offline(ALERT, SERVICE, WINDOW, [], gaps)
    assert brief.gaps == gaps
    assert brief.likely_causes[0].kind == CauseKind.UNKNOWN
    assert "no metric or log evidence could be gathered" in brief.impact.text
    assert brief.ticket is None
    assert any("Drafted without datadog, github" in n for n in brief.notes)
    # Nothing to cite: the validator flags the required claims instead of letting them pass.
    check = validate_brief(brief, [])
    assert check.coverage == 0.0
    assert "headline: no valid citation" in check.problems


def test_rollback_goes_back_past_a_failed_deployment() -> None:
    world = [monitor(), metric(ERRORS, [(-999, 0.1), (-7, 6.7)]),
             log('PSQLException: column "entry_id" is of type bigint', 520, -7),
             deploy("2a9c441", "v9.1.4", -26 * 60), deploy("5e7d1a2", "v9.2.0", -20, status="failure"),
             deploy("8c3b9f4", "v9.2.1", -8)]
    brief = draft_offline(ALERT, SERVICE, WINDOW, world, [])
    _assert_fully_cited(brief, world)
    assert brief.next_actions[0].text.startswith("Consider rolling back v9.2.1 (8c3b9f4) (back to v9.1.4 (2a9c441))")
    assert brief.next_actions[0].citations == [world[5].id, world[3].id]
    failed = next(c for c in brief.likely_causes if world[4].id in c.claim.citations)
    assert "its deployment status is failed" in failed.claim.text


def test_drafting_is_deterministic() -> None:
    world = bad_deploy_world()
    assert draft_offline(ALERT, SERVICE, WINDOW, world, []) == draft_offline(ALERT, SERVICE, WINDOW, world, [])


def test_a_ranked_down_change_and_a_status_page_are_said_in_the_brief() -> None:
    timeout = "PaymentProviderTimeout: POST https://api.stripe.com/v1/payment_intents timed out"
    world = [monitor(), metric(ERRORS, [(-999, 0.3), (-10, 6.0)]), log(timeout, 900, -9.8),
             event("Stripe: Degraded performance - API requests", -8, source="statuspage",
                   tags=("statuspage_page:stripe",)),
             deploy("c0ffee1", "v2.4.2", -21, pr_title="Update footer copy", files=("web/locales/en/footer.json",)),
             event("Feature flag fast-pay enabled for 100% of users", -8, source="launchdarkly")]
    brief = draft_offline(ALERT, SERVICE, WINDOW, world, [])
    _assert_fully_cited(brief, world)
    top = brief.likely_causes[0]
    assert top.kind == CauseKind.DEPENDENCY
    assert "Stripe (api.stripe.com)" in top.claim.text
    assert "status page" in top.claim.text
    assert world[3].id in top.claim.citations
    by_cite = {entry.claim.citations[0]: entry.claim.text for entry in brief.timeline}
    assert "ranked down: changed only docs, tests or copy (“Update footer copy”" in by_cite[world[4].id]
    assert "ranked down: landed 2 min after the symptom began" in by_cite[world[5].id]
    # Neither set-aside change is offered as a cause.
    assert not {world[4].id, world[5].id} & {c.claim.citations[0] for c in brief.likely_causes}
