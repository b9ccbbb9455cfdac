"""The held-out gate's scorers: `cause_correct` (kind and item), `no_high_confidence_wrong`
(with `expect.max_confidence`) and `no_cause_after_onset`, on hand-built briefs for the
checkout scenario, so the scorers are pinned apart from the drafter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.core.models import CauseKind, Claim, Confidence, LikelyCause
from evals.scorers import cause_correct, no_cause_after_onset, no_high_confidence_wrong, scorer
from sandbox.scenario import Scenario, bundled_scenarios_dir, load_scenario
from tests.helpers.briefs import BAD_DEPLOY, ERRORS, EVIDENCE, FLAG, NPE, good_brief, result

CHECKOUT = load_scenario(bundled_scenarios_dir() / "checkout-5xx-after-deploy.yaml")
ONSET = datetime(2026, 5, 12, 13, 58, tzinfo=UTC)
DEPLOYED = BAD_DEPLOY.model_copy(update={"timestamp": datetime(2026, 5, 12, 13, 57, tzinfo=UTC)})
LATE_FLAG = FLAG.model_copy(update={"timestamp": datetime(2026, 5, 12, 14, 0, tzinfo=UTC)})
TIMED = [DEPLOYED, LATE_FLAG, *[e for e in EVIDENCE if e.id not in {BAD_DEPLOY.id, FLAG.id}]]


def scenario(**expect: Any) -> Scenario:
    return CHECKOUT.model_copy(update={"expect": CHECKOUT.expect.model_copy(update=expect)})


def cause(kind: CauseKind, confidence: Confidence, *cites: str) -> LikelyCause:
    return LikelyCause(kind=kind, confidence=confidence, claim=Claim(text=f"{kind.value} cause", citations=list(cites)))


RIGHT = cause(CauseKind.DEPLOY, Confidence.HIGH, BAD_DEPLOY.id, NPE.id)


def test_cause_correct_needs_the_kind_and_the_item() -> None:
    assert cause_correct(CHECKOUT, result(), ()).passed
    # the right kind resting on the wrong deploy is not the right cause
    other_deploy = cause(CauseKind.DEPLOY, Confidence.HIGH, NPE.id)
    wrong_item = cause_correct(CHECKOUT, result(good_brief(likely_causes=[other_deploy])), ())
    assert wrong_item.passed is False
    assert "none derived from bad-deploy" in wrong_item.reason
    wrong_kind = cause_correct(CHECKOUT, result(good_brief(likely_causes=[cause(CauseKind.CONFIG, Confidence.LOW,
                                                                                FLAG.id)])), ())
    assert wrong_kind.passed is False
    assert "expected deploy, top cause is config" in wrong_kind.reason


def test_cause_correct_for_unknown_means_no_confident_cause() -> None:
    unknown = scenario(cause=CHECKOUT.expect.cause.model_copy(update={"kind": "unknown", "item": None}))
    honest = good_brief(likely_causes=[cause(CauseKind.UNKNOWN, Confidence.LOW, ERRORS.id),
                                       cause(CauseKind.DEPLOY, Confidence.LOW, BAD_DEPLOY.id)])
    assert cause_correct(unknown, result(honest), ()).passed
    assert cause_correct(unknown, result(), ()).passed is False  # a high deploy cause


def test_a_wrong_top_cause_at_high_confidence_fails() -> None:
    assert no_high_confidence_wrong(CHECKOUT, result(), ()).passed
    wrong = good_brief(likely_causes=[cause(CauseKind.CONFIG, Confidence.HIGH, FLAG.id), RIGHT])
    score = no_high_confidence_wrong(CHECKOUT, result(wrong), ())
    assert score.passed is False
    assert "high-confidence top cause is wrong" in score.reason
    # the same wrong answer said with medium confidence is wrong but not overconfident
    hedged = good_brief(likely_causes=[cause(CauseKind.CONFIG, Confidence.MEDIUM, FLAG.id), RIGHT])
    assert no_high_confidence_wrong(CHECKOUT, result(hedged), ()).passed
    assert cause_correct(CHECKOUT, result(hedged), ()).passed is False


def test_max_confidence_caps_every_cause() -> None:
    capped = scenario(max_confidence="medium")
    score = no_high_confidence_wrong(capped, result(), ())  # right, but at high
    assert score.passed is False
    assert "above the scenario's max confidence medium" in score.reason
    medium = good_brief(likely_causes=[cause(CauseKind.DEPLOY, Confidence.MEDIUM, BAD_DEPLOY.id, NPE.id)])
    assert no_high_confidence_wrong(capped, result(medium), ()).passed
    # an honest "unknown" at low confidence is within any cap
    low = scenario(max_confidence="low")
    assert no_high_confidence_wrong(low, result(good_brief(likely_causes=[
        cause(CauseKind.UNKNOWN, Confidence.LOW, ERRORS.id)])), ()).passed


def test_a_ranked_change_after_the_onset_fails() -> None:
    timed = scenario(onset=ONSET)
    on_time = good_brief(likely_causes=[RIGHT])  # the deploy at 13:57
    assert no_cause_after_onset(timed, result(on_time, evidence=TIMED), ()).passed
    # the flag at 14:00 ranked at any confidence, even last, is a cause that began after the onset
    late = good_brief(likely_causes=[RIGHT, cause(CauseKind.CONFIG, Confidence.LOW, LATE_FLAG.id)])
    score = no_cause_after_onset(timed, result(late, evidence=TIMED), ())
    assert score.passed is False
    assert "config (low) 2 min after the onset" in score.reason


def test_a_dependency_cause_may_cite_a_later_status_page_event() -> None:
    """A status page reports a dependency's trouble after it began: that is not a late cause."""
    timed = scenario(onset=ONSET)
    dependency = good_brief(likely_causes=[cause(CauseKind.DEPENDENCY, Confidence.MEDIUM, ERRORS.id, LATE_FLAG.id)])
    assert no_cause_after_onset(timed, result(dependency, evidence=TIMED), ()).passed


def test_no_cause_after_onset_applies_only_with_an_onset() -> None:
    assert no_cause_after_onset(CHECKOUT, result(), ()).value is None
    assert not scorer("no_cause_after_onset").applies(CHECKOUT)
    assert scorer("no_cause_after_onset").applies(scenario(onset=ONSET))
