"""The one retry policy every connector uses, on tenacity, for async and blocking clients alike.

A connector wraps one request in an *attempt*: a callable that returns the result, raises
`Failed` for what another attempt may cure (429, 5xx, a timeout, a refused connection), or
raises anything else (a 4xx as `SourceUnavailable`, `WireRefused`) to stop at once. The policy
runs at most ``max_retries + 1`` attempts, waits ``Retry-After`` when the server named a wait
(capped at `MAX_RETRY_AFTER_S`) and otherwise backs off exponentially with jitter, and turns the
last `Failed` into `SourceUnavailable` with a reason a person can read: "HTTP 500 after 3
attempts". Each client library keeps only its own mapping of errors to `Failed`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from bot.core.errors import SourceUnavailable

T = TypeVar("T")
MAX_RETRY_AFTER_S = 10.0  # never sleep longer than this on one Retry-After
# 0.2 s, 0.4 s, 0.8 s ... up to 2 s, plus up to 50 ms so concurrent callers do not retry in step.
_BACKOFF = wait_exponential(multiplier=0.2, max=2.0) + wait_random(0, 0.05)


class Failed(Exception):
    """One attempt failed in a way another attempt might cure.

    `what` is the failure in words ("HTTP 503", "timed out"); `retry_after` is the server's
    ``Retry-After`` header, if any. `unsafe` says why another attempt must not be made even so
    (a POST the server may have acted on): the policy then stops and puts it in the reason.
    """

    def __init__(self, what: str, *, retry_after: str | None = None, unsafe: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after
        self.unsafe = unsafe


# Only a `Failed` that is safe to repeat is retried; anything else (a 4xx, `WireRefused`) stops at
# once. With ``reraise=True`` the last `Failed` itself, not tenacity's RetryError, reaches us.
_RETRYABLE = retry_if_exception(lambda exc: isinstance(exc, Failed) and exc.unsafe is None)


class RetryPolicy:
    """Bounded attempts with backoff; `sleep`/`async_sleep` are injectable so tests need not wait."""

    def __init__(
        self,
        max_retries: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.attempts = max(max_retries, 0) + 1
        self.sleep = sleep
        self.async_sleep = async_sleep
        self._stop = stop_after_attempt(self.attempts)

    def call(self, attempt: Callable[[], T], *, source: str, tool: str | None = None) -> T:
        """Run a blocking `attempt` under the policy."""
        tries = 0

        def counted() -> T:
            nonlocal tries
            tries += 1
            return attempt()

        try:
            return Retrying(sleep=self.sleep, stop=self._stop, wait=_wait, retry=_RETRYABLE, reraise=True)(counted)
        except Failed as failed:
            raise SourceUnavailable(source, self.reason(failed, tries), tool) from failed

    async def acall(self, attempt: Callable[[], Awaitable[T]], *, source: str, tool: str | None = None) -> T:
        """Run an async `attempt` under the policy."""
        tries = 0

        async def counted() -> T:
            nonlocal tries
            tries += 1
            return await attempt()

        try:
            return await AsyncRetrying(sleep=self.async_sleep, stop=self._stop, wait=_wait, retry=_RETRYABLE,
                                      reraise=True)(counted)
        except Failed as failed:
            raise SourceUnavailable(source, self.reason(failed, tries), tool) from failed

    def reason(self, failed: Failed, tries: int) -> str:
        """Say what failed and how often ("HTTP 500 after 3 attempts"), and why the policy
        stopped early when another attempt was unsafe."""
        text = f"{failed.what} after {tries} attempt{'' if tries == 1 else 's'}"
        if failed.unsafe and tries < self.attempts:
            text += f" ({failed.unsafe})"
        return text


def retry_after_seconds(header: str | None) -> float | None:
    """The wait a ``Retry-After`` header asks for, capped; None for none or an HTTP-date (we
    would rather back off than trust the two clocks to agree)."""
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S) if math.isfinite(seconds) else None


def _wait(state: RetryCallState) -> float:
    """Retry-After wins; else exponential backoff with jitter."""
    failure = state.outcome.exception() if state.outcome is not None else None
    if isinstance(failure, Failed) and (asked := retry_after_seconds(failure.retry_after)) is not None:
        return asked
    return float(_BACKOFF(state))
