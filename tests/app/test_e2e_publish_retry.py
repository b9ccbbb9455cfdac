"""Issue 13, finding 2, as PagerDuty and Slack would play it against the bot `serve` runs: Slack
answers 500 on the first post of a triggered incident; the brief is not lost: a new delivery of
the trigger resumes the incident that was claimed but never posted, once Slack is back."""

from __future__ import annotations

from pathlib import Path

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
