"""The policy's `timing` block: the first-post deadline and the per-source timeouts in one place,
validated naming the key, fed by `IB_SOURCE_TIMEOUT_S` where the policy names no default."""

from __future__ import annotations

import pytest

from bot.core.errors import ConfigError
from bot.core.policy import BUNDLED_POLICY, load_policy, parse_policy


def _policy(timing: object) -> dict[str, object]:
    return {"agent_policy": {"timing": timing}}


def test_the_bundled_policy_posts_within_a_few_seconds() -> None:
    timing = load_policy(BUNDLED_POLICY).timing
    assert 0 < timing.first_post_s <= 5
    assert timing.timeout_for("github", 20.0) == 20.0, "no default in the file: the setting applies"


def test_a_sources_own_timeout_wins_over_the_default_which_wins_over_the_setting() -> None:
    timing = parse_policy(_policy({"source_timeout_s": {"default": 12, "github": 6}}), "p.yaml").timing
    assert timing.timeout_for("github", 20.0) == 6
    assert timing.timeout_for("jira", 20.0) == 12
    assert timing.slowest_timeout(20.0) == 12


@pytest.mark.parametrize(("timing", "names"), [
    ({"source_timeout_s": {"gihtub": 5}}, "source_timeout_s.gihtub"),
    ({"source_timeout_s": {"jira": 0}}, "source_timeout_s.jira"),
    ({"source_timeout_s": {"jira": 601}}, "source_timeout_s.jira"),
    ({"first_post_s": 0}, "first_post_s"),
    ({"first_post_s": 90}, "first_post_s"),
    ({"first_posts": 3}, "first_posts"),
])
def test_a_bad_timing_is_refused_naming_the_key(timing: object, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        parse_policy(_policy(timing), "p.yaml")
