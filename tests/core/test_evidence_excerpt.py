"""Issue 13 (found by the full scenario leak sweep): an evidence excerpt over its bound is masked
before it is cut, so a secret that straddles the cut is not left as an unrecognisable half."""

from __future__ import annotations

from bot.core.models import EXCERPT_MAX_CHARS
from tests.helpers.evidence import event

HOOK = "https://hooks.slack.com/services/T07QZ8LM3/B07RT2VB6/Hu5Gy2Jw8Qe4Ro1Ti7Pa3Sd"
GH = "ghp_Zq8Lm3Nx7Rt2Vb6Kc9Hj4Pw1Sd5Fg0Ay3Ek7Ut"


def _straddling(secret: str, keep: int) -> str:
    """Text whose excerpt bound falls `keep` characters into `secret`."""
    lead = "runbook step " + "x" * (EXCERPT_MAX_CHARS - 1 - keep - len("runbook step ") - 1) + " "
    return lead + secret + " and more text after it " * 5


def test_a_secret_cut_by_the_excerpt_bound_is_masked_first() -> None:
    for secret, keep in ((HOOK, 32), (GH, 12), (GH, 30)):  # HOOK cut right after ".../services"
        excerpt = event(_straddling(secret, keep), 1, source="confluence").excerpt
        assert len(excerpt) <= EXCERPT_MAX_CHARS
        assert excerpt.endswith("…")
        assert secret[:keep] not in excerpt, excerpt[-80:]


def test_a_short_excerpt_is_kept_as_it_is() -> None:
    assert event("deploy 3fa2b1 at 14:01", 1, source="github").excerpt == "deploy 3fa2b1 at 14:01"
