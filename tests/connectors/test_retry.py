"""The connectors' one retry policy, without a network: attempts, waits, reasons, safety."""

from __future__ import annotations

import pytest

from bot.core.errors import SourceUnavailable, WireRefused
from connectors._retry import MAX_RETRY_AFTER_S, Failed, RetryPolicy, retry_after_seconds


class Script:
    """An attempt that raises the given failures in turn, then returns "ok"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def recording_policy(max_retries: int) -> tuple[RetryPolicy, list[float]]:
    slept: list[float] = []
    return RetryPolicy(max_retries, sleep=slept.append), slept


def test_a_failure_is_retried_until_it_succeeds() -> None:
    policy, slept = recording_policy(2)
    attempt = Script(Failed("HTTP 503"), Failed("timed out"))
    assert policy.call(attempt, source="s") == "ok"
    assert attempt.calls == 3
    assert len(slept) == 2


def test_attempts_are_bounded_and_the_reason_names_the_last_failure() -> None:
    policy, _ = recording_policy(2)
    attempt = Script(*[Failed("HTTP 500")] * 2, Failed("connection refused"))
    with pytest.raises(SourceUnavailable) as gap:
        policy.call(attempt, source="jira", tool="jira.search")
    assert (gap.value.source, gap.value.tool) == ("jira", "jira.search")
    assert gap.value.reason == "connection refused after 3 attempts"
    assert attempt.calls == 3


def test_one_attempt_is_said_in_the_singular() -> None:
    policy, slept = recording_policy(0)
    with pytest.raises(SourceUnavailable) as gap:
        policy.call(Script(Failed("HTTP 502")), source="s")
    assert gap.value.reason == "HTTP 502 after 1 attempt"
    assert slept == []


def test_anything_but_failed_stops_at_once_and_passes_through() -> None:
    policy, slept = recording_policy(3)
    refused = WireRefused("s", "POST", "/x")
    attempt = Script(refused)
    with pytest.raises(WireRefused) as raised:
        policy.call(attempt, source="s")
    assert raised.value is refused
    assert (attempt.calls, slept) == (1, [])


def test_an_unsafe_failure_is_not_retried_and_says_why() -> None:
    policy, slept = recording_policy(2)
    attempt = Script(Failed("HTTP 429", retry_after="1"), Failed("HTTP 500", unsafe="not safe twice"))
    with pytest.raises(SourceUnavailable) as gap:
        policy.call(attempt, source="s")
    assert gap.value.reason == "HTTP 500 after 2 attempts (not safe twice)"
    assert (attempt.calls, slept) == (2, [1.0])


def test_an_unsafe_failure_on_the_last_attempt_needs_no_excuse() -> None:
    policy, _ = recording_policy(1)
    attempt = Script(Failed("HTTP 429"), Failed("HTTP 500", unsafe="not safe twice"))
    with pytest.raises(SourceUnavailable) as gap:
        policy.call(attempt, source="s")
    assert gap.value.reason == "HTTP 500 after 2 attempts"


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    policy, slept = recording_policy(3)
    attempt = Script(Failed("HTTP 429", retry_after="3"), Failed("HTTP 429", retry_after="3600"), Failed("HTTP 503"))
    assert policy.call(attempt, source="s") == "ok"
    assert slept[:2] == [3.0, MAX_RETRY_AFTER_S]
    assert 0.8 <= slept[2] <= 0.85  # the third wait is plain backoff: 0.2 * 2**2 plus jitter


def test_backoff_grows_exponentially_with_a_little_jitter_up_to_two_seconds() -> None:
    policy, slept = recording_policy(6)
    assert policy.call(Script(*[Failed("HTTP 500")] * 6), source="s") == "ok"
    for wait, base in zip(slept, [0.2, 0.4, 0.8, 1.6, 2.0, 2.0], strict=True):
        assert base <= wait <= base + 0.05


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None), ("", None), ("2", 2.0), ("0.5", 0.5), ("-4", 0.0), ("99", MAX_RETRY_AFTER_S),
    ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("nan", None), ("inf", None),
])
def test_retry_after_header_values(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds


async def test_the_async_form_follows_the_same_rules() -> None:
    slept: list[float] = []

    async def no_wait(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(1, async_sleep=no_wait)
    script = Script(Failed("HTTP 429", retry_after="1"), Failed("timed out"))

    async def attempt() -> str:
        return script()

    with pytest.raises(SourceUnavailable) as gap:
        await policy.acall(attempt, source="datadog", tool="datadog.get_monitor")
    assert gap.value.reason == "timed out after 2 attempts"
    assert gap.value.tool == "datadog.get_monitor"
    assert (script.calls, slept) == (2, [1.0])
