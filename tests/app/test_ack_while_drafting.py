"""The acknowledgement never waits behind drafting (issue 13, storm ack p99): `serve` drafts on the
runtime's worker loop, so while a brief's drafting holds its loop with CPU work, a PagerDuty
delivery, a Slack request and a health check sent meanwhile are all answered. Judged by the
order of events (the answers arrive before the drafting is let go), never by wall-clock times."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.core.models import Alert, Brief, Evidence, ServiceEntry, SourceGap, TimeWindow
from bot.core.policy import StormRules, default_policy
from bot.draft.drafter import Drafter, OfflineDrafter
from bot.runtime import Runtime
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.slack_app import running_bot

HOLD_LIMIT_S = 30.0  # the drafting lets go by itself after this: the old shape fails, never hangs


class HoldingDrafter:
    """The first brief's drafting does CPU work on its loop until the test lets it go (as the
    analysis and rendering steps held the loop in the storm); later briefs draft offline."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.started = threading.Event()
        self.release = threading.Event()
        self._held = False

    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence],
                    gaps: list[SourceGap], *, key: str | None = None) -> Brief:
        if not self._held:
            self._held = True
            self.events.append(f"drafting {alert.incident_id}")
            self.started.set()
            deadline = time.monotonic() + HOLD_LIMIT_S
            while not self.release.is_set():  # synchronous: nothing else runs on this loop meanwhile
                if time.monotonic() > deadline:
                    self.events.append("drafting let go by its time limit")
                    break
                sum(i * i for i in range(2000))
            self.events.append(f"drafted {alert.incident_id}")
        return await OfflineDrafter().draft(alert, service, window, evidence, gaps, key=key)


def _incident(scenario: Scenario, n: int) -> Scenario:
    alert = scenario.alert.model_copy(update={"incident_id": f"Q{n:03d}HOLD", "title": f"{scenario.alert.title} #{n}",
                                              "triggered_at": scenario.alert.triggered_at + timedelta(minutes=n)})
    return scenario.model_copy(update={"alert": alert})


async def test_webhooks_and_slack_are_answered_while_a_brief_holds_its_loop(checkout: Scenario,
                                                                            tmp_path: Path) -> None:
    events: list[str] = []
    holding = HoldingDrafter(events)

    def drafter(_sb: Sandbox, _rt: Runtime) -> Any:
        def make() -> Drafter:
            return holding
        return make

    policy = default_policy().model_copy(update={"storms": StormRules(group_by="off")})
    async with running_bot(checkout, tmp_path / "bot.db", policy=policy, drafter=drafter) as bot:
        url = f"{bot.url}/webhooks/pagerduty"
        first = _incident(checkout, 1)
        body, headers = build_webhook(first, "incident.triggered", occurred_at=checkout.now)
        assert (await send_webhook(url, body, headers)).status_code == 202
        assert await asyncio.to_thread(holding.started.wait, HOLD_LIMIT_S), "the first brief never started drafting"

        # Meanwhile: a second incident's delivery, a Slack request and the health checks.
        second = _incident(checkout, 2)
        body, headers = build_webhook(second, "incident.triggered", occurred_at=checkout.now)
        answered = await send_webhook(url, body, headers)
        events.append(f"webhook answered {answered.status_code}")
        challenge = '{"type": "url_verification", "challenge": "c-13", "token": "t"}'
        slack = await slack_sender.post_to_bot(f"{bot.url}/slack/events", challenge,
                                               slack_sender.signed_headers(bot.secret, challenge))
        events.append(f"slack answered {slack.status_code}")
        events.append("let the drafting go")
        holding.release.set()

        await wait_for(lambda: len(_briefs(bot.sb)) == 2 or None, "both briefs", timeout=60)
        await bot.rt.idle()

    assert events == ["drafting Q001HOLD", "webhook answered 202", "slack answered 200",
                      "let the drafting go", "drafted Q001HOLD"], events
    assert len(_briefs(bot.sb)) == 2, "both incidents got their brief"


def _briefs(sb: Sandbox) -> list[Any]:
    return [m for m in sb.system("slack").messages if any(b.get("type") == "actions" for b in m.blocks or [])]
