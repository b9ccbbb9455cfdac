"""A model's confidence is held to what the analysis shows: a suspect set aside is `low`, a ranked
suspect at most what the analysis gave it, one the analysis never considered at most `medium`.
Lowered only, never raised, and each lowering said in the brief's notes."""

from __future__ import annotations

from typing import Any

from bot.analyse.analyser import analyse
from bot.analyse.signals import RankedDown
from bot.core.models import Brief, CauseKind, Claim, Confidence, Evidence, LikelyCause
from bot.draft.calibration import calibrate
from bot.gateway.drafter import LlmDrafter
from tests.helpers.evidence import ALERT, SERVICE, WINDOW, bad_deploy_world, deploy, log, metric
from tests.helpers.gateway import Scripted, gateway

EVIDENCE = bad_deploy_world()
SIGNALS = analyse(ALERT, SERVICE, WINDOW, EVIDENCE)
BAD = next(e for e in EVIDENCE if e.kind == "deploy" and e.title.startswith("Deploy v2.3.1"))
OLD = next(e for e in EVIDENCE if e.kind == "deploy" and e.title.startswith("Deploy v2.3.0"))
SYMPTOM = next(e for e in EVIDENCE if e.kind == "metric" and "errors" in e.title)
NPE = next(e for e in EVIDENCE if e.kind == "log_pattern")


def cause(kind: CauseKind, confidence: Confidence, *cites: Evidence) -> LikelyCause:
    return LikelyCause(kind=kind, confidence=confidence,
                       claim=Claim(text=f"a {kind.value} cause", citations=[e.id for e in cites]))


def brief(*causes: LikelyCause) -> Brief:
    return Brief(headline=Claim(text="checkout-api 5xx", citations=[SYMPTOM.id]),
                 impact=Claim(text="errors up", citations=[SYMPTOM.id]), likely_causes=list(causes))


def test_the_analysis_rates_the_deploy_that_lines_up_high() -> None:
    top = SIGNALS.hypotheses[0]
    assert (top.kind, top.confidence, top.subject) == (CauseKind.DEPLOY, Confidence.HIGH, BAD.id)


def test_a_cause_the_analysis_agrees_with_keeps_its_confidence_and_adds_no_note() -> None:
    answer = brief(cause(CauseKind.DEPLOY, Confidence.HIGH, BAD, SYMPTOM, NPE))
    calibrated = calibrate(answer, SIGNALS)
    assert calibrated.brief == answer
    assert calibrated.notes == []


def test_a_ranked_suspect_is_capped_at_the_analysis_confidence() -> None:
    medium = SIGNALS.model_copy(update={"hypotheses": [
        SIGNALS.hypotheses[0].model_copy(update={"confidence": Confidence.MEDIUM}), *SIGNALS.hypotheses[1:]]})
    calibrated = calibrate(brief(cause(CauseKind.DEPLOY, Confidence.HIGH, BAD)), medium)
    assert calibrated.brief.likely_causes[0].confidence == Confidence.MEDIUM
    [note] = calibrated.notes
    assert note.startswith("Likely cause 1: the model said high confidence, lowered to medium: "
                           "the analysis rates this deploy cause medium")


def test_a_suspect_the_analysis_set_aside_is_low_and_the_note_says_why() -> None:
    flagged = SIGNALS.model_copy(update={"ranked_down": [
        RankedDown(evidence_id=OLD.id, kind=CauseKind.DEPLOY, name="deploy v2.3.0", reason="changed only docs")]})
    calibrated = calibrate(brief(cause(CauseKind.DEPLOY, Confidence.HIGH, OLD, SYMPTOM)), flagged)
    assert calibrated.brief.likely_causes[0].confidence == Confidence.LOW
    assert calibrated.notes == ["Likely cause 1: the model said high confidence, lowered to low: "
                                "the analysis set deploy v2.3.0 aside (changed only docs)."]


def test_a_cause_of_another_kind_may_cite_a_suspect_set_aside_as_what_it_is_not() -> None:
    flagged = SIGNALS.model_copy(update={"ranked_down": [
        RankedDown(evidence_id=OLD.id, kind=CauseKind.DEPLOY, name="deploy v2.3.0", reason="changed only docs")]})
    calibrated = calibrate(brief(cause(CauseKind.DEPENDENCY, Confidence.MEDIUM, NPE, OLD)), flagged)
    assert calibrated.brief.likely_causes[0].confidence == Confidence.MEDIUM
    assert calibrated.notes == []


def test_a_cause_the_analysis_never_considered_is_at_most_medium() -> None:
    # The old deploy, 22 hours before the errors: no candidate rests on it. Citing the symptom,
    # which every candidate leans on, does not make it the analysis's deploy.
    calibrated = calibrate(brief(cause(CauseKind.DEPLOY, Confidence.HIGH, OLD, SYMPTOM)), SIGNALS)
    assert calibrated.brief.likely_causes[0].confidence == Confidence.MEDIUM
    assert calibrated.notes == ["Likely cause 1: the model said high confidence, lowered to medium: the analysis "
                                "found no suspect whose timing and content both agree with it."]


def test_confidence_is_never_raised_and_each_cause_is_judged_on_its_own() -> None:
    answer = brief(cause(CauseKind.DEPLOY, Confidence.LOW, BAD),
                   cause(CauseKind.TRAFFIC, Confidence.HIGH, SYMPTOM),
                   cause(CauseKind.UNKNOWN, Confidence.HIGH, SYMPTOM))
    calibrated = calibrate(answer, SIGNALS)
    assert [c.confidence for c in calibrated.brief.likely_causes] == [
        Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH]
    assert [n.split(":")[0] for n in calibrated.notes] == ["Likely cause 2"]


def test_a_dependency_is_matched_by_its_own_evidence_not_the_symptom() -> None:
    world = [*EVIDENCE[:1],
             metric("sum:trace.http.request.errors{service:checkout-api,env:prod}.as_rate()", [(-999, 0.3), (-2, 9.5)]),
             metric("avg:redis.net.latency{service:checkout-redis}", [(-999, 1.0), (-3, 80.0)]),
             log("redis.exceptions.TimeoutError: Timeout reading from checkout-redis:6379", 500, -2.5),
             deploy("77aa010", "v2.3.0", -22 * 60, description="Gift card validation")]
    signals = analyse(ALERT, SERVICE, WINDOW, world)
    dependency = next(h for h in signals.hypotheses if h.kind == CauseKind.DEPENDENCY)
    assert dependency.confidence == Confidence.HIGH
    assert signals.symptom is not None
    symptom = signals.symptom.evidence_id
    own = [e for e in world if e.id in dependency.evidence_ids and e.id != symptom]
    assert own, "the dependency rests on evidence of its own"
    calibrated = calibrate(brief(cause(CauseKind.DEPENDENCY, Confidence.HIGH, *own)), signals)
    assert calibrated.brief.likely_causes[0].confidence == Confidence.HIGH
    # Citing only the symptom, which the dependency also rests on, is not naming it.
    only_symptom = next(e for e in world if e.id == symptom)
    calibrated = calibrate(brief(cause(CauseKind.DEPENDENCY, Confidence.HIGH, only_symptom)), signals)
    assert calibrated.brief.likely_causes[0].confidence == Confidence.MEDIUM


async def test_the_model_drafter_lowers_an_overconfident_cause_and_says_so_in_the_brief() -> None:
    answer: dict[str, Any] = {
        "headline": {"text": "checkout-api 5xx after a deploy", "citations": [SYMPTOM.id]},
        "impact": {"text": "5xx rate at 9.5/s", "citations": [SYMPTOM.id]},
        "likely_causes": [{"kind": "deploy", "confidence": "high",
                           "claim": {"text": "deploy v2.3.0 broke gift cards", "citations": [OLD.id, SYMPTOM.id]}}],
        "next_actions": [{"text": "Roll back v2.3.0", "citations": [OLD.id]}],
    }
    # The brief, then the ticket task's answer (a failure: the ticket falls back to the brief's).
    primary = Scripted([answer, RuntimeError("no ticket model")])
    drafted = await LlmDrafter(gateway(primary), workspace="T1").draft(ALERT, SERVICE, WINDOW, EVIDENCE, [])
    assert drafted.draft.drafter == "llm"
    assert drafted.likely_causes[0].confidence == Confidence.MEDIUM
    assert ("Likely cause 1: the model said high confidence, lowered to medium: the analysis found no suspect "
            "whose timing and content both agree with it.") in drafted.notes
