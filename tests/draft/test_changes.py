"""What a later version of a brief says it changed: the pending sources that answered (and
what they added) or failed, and whether the top cause moved."""

from __future__ import annotations

from bot.core.models import (
    Brief,
    BriefResult,
    CauseKind,
    Claim,
    Confidence,
    Evidence,
    LikelyCause,
    Source,
    SourceGap,
)
from bot.draft.changes import what_changed
from tests.helpers.evidence import ERRORS, deploy, metric


def result(evidence: list[Evidence], cause: LikelyCause | None, *, pending: list[Source] | None = None,
           gaps: list[SourceGap] | None = None) -> BriefResult:
    brief = Brief(headline=Claim(text="h"), impact=Claim(text="i"), likely_causes=[cause] if cause else [])
    return BriefResult(brief=brief, evidence=evidence, gaps=gaps or [], pending=pending or [])


def cause(kind: CauseKind, cited: str) -> LikelyCause:
    return LikelyCause(kind=kind, claim=Claim(text=f"{kind.value} did it", citations=[cited]),
                       confidence=Confidence.MEDIUM)


ERR = metric(ERRORS, [(-999, 0.3), (-2, 9.5)])
DEPLOY = deploy("abc1234", "v2.3.1", 28)


def test_a_source_that_answered_names_what_it_added_and_an_unchanged_cause() -> None:
    before = result([ERR], cause(CauseKind.UNKNOWN, ERR.id), pending=[Source.GITHUB])
    after = result([ERR, DEPLOY], cause(CauseKind.UNKNOWN, ERR.id))
    assert what_changed(before, after) == f"GitHub answered: {DEPLOY.title} added; top cause unchanged"


def test_a_new_top_cause_is_named_with_what_it_replaced() -> None:
    before = result([ERR], cause(CauseKind.UNKNOWN, ERR.id), pending=[Source.GITHUB])
    after = result([ERR, DEPLOY], cause(CauseKind.DEPLOY, DEPLOY.id))
    assert what_changed(before, after).endswith("top cause now deploy: deploy did it (was unknown)")


def test_a_source_that_failed_says_so() -> None:
    before = result([ERR], None, pending=[Source.GITHUB])
    gap = SourceGap(source=Source.GITHUB, tool="github.list_deployments", reason="no answer within 10s")
    after = result([ERR], None, gaps=[gap])
    assert what_changed(before, after) == "GitHub did not answer (no answer within 10s); top cause unchanged"


def test_a_complete_first_version_keeps_the_documented_json_shape() -> None:
    assert set(result([ERR], None).model_dump()) == {"brief", "evidence", "gaps"}
    assert set(result([ERR], None, pending=[Source.JIRA]).model_dump(mode="json")) == {
        "brief", "evidence", "gaps", "pending"}
    early = result([ERR], None, pending=[Source.JIRA])
    assert BriefResult.model_validate(early.model_dump(mode="json")) == early
