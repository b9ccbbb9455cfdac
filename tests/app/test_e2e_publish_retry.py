"""Issue 13, finding 2, as PagerDuty and Slack would play it against the bot `serve` runs: Slack
answers 500 on the first post of a triggered incident; the brief is not lost: a new delivery of
the trigger resumes the incident that was claimed but never posted, once Slack is back. If the
incident resolves before that, the clock posts the brief once as the record of a closed
incident, never as a live card."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.app.clock import Maintenance
from bot.slack.publish import LATE_NOTE, RETRY
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from tests.helpers.scenarios import with_faults
from tests.helpers.slack_app import running_bot


async def test_a_trigger_whose_first_post_failed_is_posted_by_the_next_delivery(checkout: Scenario,
                                                                                tmp_path: Path) -> None:
    down = with_faults(checkout, errors={"slack.chat_postMessage": "http_500"})
    async with running_bot(down, tmp_path / "e2e.db") as harness:
        key = f"pd:{checkout.alert.incident_id}"
        body, headers = build_webhook(checkout, event_id="Q0TRIGGER1")
        assert (await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)).status_code == 202
        await harness.rt.idle()
        incident = await harness.rt.store.get_incident(key)
        assert incident is not None
        assert (incident.publish_state, incident.message_ts) == ("claimed", None)
        assert incident.publish_error is not None
        assert harness.brief_message() is None

        harness.sb.ctx.scenario = with_faults(checkout)  # Slack is back
        body, headers = build_webhook(checkout, event_id="Q0TRIGGER2")
        assert (await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)).status_code == 202
        message = await wait_for(harness.brief_message, "the brief in Slack")
        await harness.rt.idle()
        incident = await harness.rt.store.get_incident(key)
        assert incident is not None
        assert incident.publish_state == "final"
        assert incident.message_ts == message.ts
        assert [m.ts for m in harness.sb.system("slack").messages if m.thread_ts is None] == [message.ts]


async def test_an_incident_resolved_before_its_first_post_landed_is_posted_once_as_resolved(
        checkout: Scenario, tmp_path: Path) -> None:
    down = with_faults(checkout, errors={"slack.chat_postMessage": "http_500"})
    async with running_bot(down, tmp_path / "e2e.db") as harness:
        key, slack = f"pd:{checkout.alert.incident_id}", harness.sb.system("slack")
        body, headers = build_webhook(checkout, event_id="Q0TRIGGER1")
        assert (await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)).status_code == 202
        await harness.rt.idle()
        harness.sb.ctx.scenario = with_faults(checkout)  # Slack is back, but nobody re-sends the trigger

        resolved_at = checkout.now + timedelta(minutes=3)
        body, headers = build_webhook(checkout, "incident.resolved", event_id="Q0RESOLVED", occurred_at=resolved_at)
        assert (await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)).status_code == 202
        await harness.rt.idle()
        incident = await harness.rt.store.get_incident(key)
        assert incident is not None
        assert (incident.status, incident.publish_state, incident.message_ts) == ("resolved", "claimed", None)
        assert slack.messages == []

        clock = Maintenance(harness.rt)
        harness.rt.now = lambda: checkout.now + RETRY.backoff(1) + timedelta(seconds=1)
        assert await clock.finish_publishing() == 1
        [card] = [m for m in slack.messages if m.thread_ts is None]
        assert card.updates == [], "posted complete: no placeholder, nothing updated in place"
        blocks = json.dumps(card.blocks, ensure_ascii=False)
        assert f"*Status:* Resolved at {resolved_at:%H:%M} UTC" in blocks
        assert card.blocks[0]["text"]["text"].startswith("✅")
        assert "ticket_create" not in blocks, "no ticket from a resolved incident's card"
        assert "placeholder" not in blocks
        assert card.text.startswith(f"Resolved at {resolved_at:%H:%M} UTC · Incident brief:")
        assert [m.text for m in slack.messages if m.thread_ts == card.ts] == [LATE_NOTE]
        incident = await harness.rt.store.get_incident(key)
        assert incident is not None
        assert (incident.publish_state, incident.message_ts, incident.status) == ("final", card.ts, "resolved")
        assert len(await harness.rt.store.list_briefs(key)) == 1

        assert await clock.finish_publishing() == 0, "final: nothing left for the clock"
        body, headers = build_webhook(checkout, event_id="Q0TRIGGER2")  # a late redelivery of the trigger
        assert (await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)).status_code == 202
        await harness.rt.idle()
        assert [m.ts for m in slack.messages if m.thread_ts is None] == [card.ts], "posted once"
