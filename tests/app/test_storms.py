"""Alert storms through the web app (`bot.intake.grouping`, `bot.slack.storm`): many PagerDuty
incidents of one service within the window become one brief with the others as replies in its
thread; a new window or a resolved leader opens a new brief; drafting is bounded."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.core.policy import Policy, StormRules, default_policy
from bot.intake.grouping import DraftSlots, draft_slots
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from tests.helpers.slack_app import Harness, running_bot

BUSY_RETRIES = 5  # PagerDuty itself retries a 5xx for hours


def incident(scenario: Scenario, n: int, *, minutes: float = 0) -> Scenario:
    """Another PagerDuty incident of the scenario's service, triggered `minutes` later."""
    alert = scenario.alert.model_copy(update={"incident_id": f"Q{n:03d}STORM", "title": f"{scenario.alert.title} #{n}",
                                              "triggered_at": scenario.alert.triggered_at + timedelta(minutes=minutes)})
    return scenario.model_copy(update={"alert": alert})


async def fire(harness: Harness, scenario: Scenario, event: str = "incident.triggered") -> Any:
    """Deliver as PagerDuty does: a 503 "busy" (a bounded store write that met a SQLite lock, on a
    loaded machine) is retried, the same delivery again; anything else must be accepted."""
    body, headers = build_webhook(scenario, event, occurred_at=harness.sb.scenario.now)
    for _ in range(BUSY_RETRIES):
        response = await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)
        if response.status_code != 503:
            break
        await asyncio.sleep(0.2)
    assert response.status_code == 202, response.text
    return response


def briefs(harness: Harness) -> list[Any]:
    return [m for m in harness.sb.system("slack").messages if any(b.get("type") == "actions" for b in m.blocks or [])]


def replies(harness: Harness, parent: Any, text: str) -> list[Any]:
    return [m for m in harness.sb.system("slack").messages
            if getattr(m, "thread_ts", None) == parent.ts and text in (m.text or "")]


def _policy(**storms: Any) -> Policy:
    return default_policy().model_copy(update={"storms": StormRules(**storms)})


async def test_a_storm_of_one_service_is_one_brief_with_the_others_in_its_thread(checkout: Scenario,
                                                                                tmp_path: Path) -> None:
    storm = [incident(checkout, n, minutes=n / 2) for n in range(6)]
    async with running_bot(checkout, tmp_path / "bot.db") as harness:
        # Every incident delivered twice, all at once (PagerDuty retries, a second subscription).
        await asyncio.gather(*(fire(harness, s) for s in storm + storm))
        await harness.rt.idle()
        [brief] = briefs(harness)
        also = replies(harness, brief, "Also firing")
        # A member acknowledged: the status replies in the leader's thread, the brief is untouched.
        leader = next(i for i in await harness.rt.store.list_incidents() if i.message_ts == brief.ts)
        member = next(s for s in storm if f"pd:{s.alert.incident_id}" != leader.key)
        await fire(harness, member, "incident.acknowledged")
        await harness.rt.idle()
        acked = replies(harness, brief, "Acknowledged")
    assert len(also) == 5, [m.text for m in also]
    assert len({m.text for m in also}) == 5, "each grouped incident once"
    assert all("same service within 10 min" in m.text for m in also)
    assert len(acked) == 1
    assert member.alert.title in acked[0].text


async def test_a_new_window_or_a_resolved_leader_opens_a_new_brief(checkout: Scenario, tmp_path: Path) -> None:
    async with running_bot(checkout, tmp_path / "bot.db") as harness:
        await fire(harness, incident(checkout, 1))
        await fire(harness, incident(checkout, 2, minutes=11))  # past the 10-minute window
        await harness.rt.idle()
        assert len(briefs(harness)) == 2
        await fire(harness, incident(checkout, 2, minutes=11), "incident.resolved")
        await harness.rt.idle()
        await fire(harness, incident(checkout, 3, minutes=12))  # inside #2's window, but #2 resolved
        await harness.rt.idle()
        assert len(briefs(harness)) == 3


async def test_grouping_off_gives_each_incident_its_brief_and_drafting_stays_bounded(
        checkout: Scenario, tmp_path: Path) -> None:
    policy = _policy(group_by="off", max_concurrent_briefs=2)
    async with running_bot(checkout, tmp_path / "bot.db", policy=policy) as harness:
        await asyncio.gather(*(fire(harness, incident(checkout, n)) for n in range(5)))
        await wait_for(lambda: len(briefs(harness)) == 5 or None, "five briefs", timeout=60)
        await harness.rt.idle()
        # The briefs drafted on the runtime's worker loop: its slots are the ones that bound them.
        assert harness.rt.worker is not None
        slots = await harness.rt.worker.call(_slots_of_this_loop)
        drafted = [m for m in briefs(harness) if "drafter" in json.dumps(m.blocks)]
    assert len(drafted) == 5
    assert slots.peak == 2, "five briefs, never more than two drafted at once"


async def _slots_of_this_loop() -> DraftSlots:
    return draft_slots(2)


async def test_draft_slots_bound_concurrency() -> None:
    slots = DraftSlots(3)
    running = 0
    seen = 0

    async def work() -> None:
        nonlocal running, seen
        async with slots.slot():
            running += 1
            seen = max(seen, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(work() for _ in range(20)))
    assert (seen, slots.peak, slots.running, slots.waiting) == (3, 3, 0, 0)
