"""Alert storms: which alerts share one incident thread, and how many briefs draft at once.

A bad deploy pages twenty times for one service in a minute. Twenty briefs would bury the
channel, gather the same evidence twenty times and spend twenty times on the model; one brief
with the other nineteen alerts as replies in its thread is what an on-call engineer wants. The
policy's `storms` section says how: `group_by` (the catalog service, or `off`) and `window_s`.
The store decides, race-free across replicas, which incident of a window leads
(`bot.store.replicas.storms`); `bot.slack.storm` posts the brief or the reply.

Drafting is bounded too (`max_concurrent_briefs`, per replica): a brief takes a slot for its
gather-and-draft; the others wait in line, their placeholders already posted.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bot.core.models import Alert
from bot.core.policy import StormRules


def storm_key(alert: Alert, channel: str, rules: StormRules) -> str | None:
    """The group an alert belongs to (None: never grouped). Only PagerDuty incidents group: a
    person asking in Slack asked for a brief and gets one."""
    if rules.group_by == "off" or rules.window_s <= 0 or alert.via != "pagerduty" or not alert.service:
        return None
    return f"{channel}:{alert.service}"[:300]


def member_line(alert: Alert, rules: StormRules) -> str:
    """The reply in the leader's thread for an alert grouped into it (plain text: the caller
    escapes and redacts it for Slack)."""
    minutes = rules.window_s / 60
    urgency = f", {alert.urgency} urgency" if alert.urgency else ""
    incident = f"PagerDuty {alert.incident_id}" if alert.incident_id else "an alert"
    return (f"Also firing: {alert.title} ({incident}{urgency}, {alert.triggered_at:%H:%M} UTC). "
            f"Grouped into this brief: same service within {minutes:g} min.")


@dataclass
class DraftSlots:
    """Bounded drafting for one event loop: at most `limit` at once; `peak` is the most seen."""

    limit: int
    semaphore: asyncio.Semaphore = field(init=False)
    running: int = 0
    waiting: int = 0
    peak: int = 0

    def __post_init__(self) -> None:
        self.semaphore = asyncio.Semaphore(self.limit)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self.semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            self.running -= 1
            self.semaphore.release()


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, DraftSlots]] = weakref.WeakKeyDictionary()


def draft_slots(limit: int) -> DraftSlots:
    """This process's slots for `limit` (one set per event loop: a semaphore is bound to its loop)."""
    per_loop = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    if limit not in per_loop:
        per_loop[limit] = DraftSlots(limit)
    return per_loop[limit]
