"""Slack's rate limits as the sandbox plays them: the ``http_429`` and ``http_429_persistent``
faults on a Slack tool (or on ``slack``).

Slack limits each Web API method per token. Once a method is over its limit, every call of it
with that token is answered HTTP 429 with ``Retry-After`` (whole seconds) until the window has
passed; a client that retries sooner is refused again. The sandbox plays two such limits:

- ``http_429``, a burst: the first call of a method opens a window of the fault's
  ``retry_after_s``; every call inside it is refused with the seconds left, and once it has
  passed the method answers again (one burst per method and token). A client that waits what
  it is told gets through on its next try; one that retries at once does not.
- ``http_429_persistent``, a method kept over its limit (other callers on the same token keep
  its window full): every call is refused while the fault lasts, each told to come back after
  ``retry_after_s``, so a client gives up after its own retries whatever it waits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from sandbox.scenario import Fault


class RateLimits:
    """Which (method, token) pairs are limited, and until when (the clock's seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[tuple[str, str], float] = {}

    def refuse(self, fault: Fault | None, tool: str, token: str, retry_after_s: int) -> int | None:
        """The ``Retry-After`` seconds to refuse this call with, or None when it goes through."""
        if fault == "http_429_persistent":
            return retry_after_s
        if fault != "http_429":
            return None
        key, now = (tool, token), self._clock()
        until = self._until.get(key)
        if until is None:  # the burst that goes over the limit: the window opens here
            self._until[key] = now + retry_after_s
            return retry_after_s
        if now < until:
            return math.ceil(until - now)
        return None
