"""PagerDuty's real traffic against the bot as `serve` runs it, over HTTP: every documented v3 event
type and the recorded deliveries are answered 2xx, and a trigger delivered hours late is briefed
only after PagerDuty (the sandbox) confirms the incident is still open, the check audited."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from tests.helpers.pagerduty import EVENT_TYPES, FULL_EXAMPLES, RECORDED, documented_event, signed
from tests.helpers.replay import fixture
from tests.helpers.slack_app import running_bot


async def test_every_genuine_pagerduty_delivery_is_answered_2xx(checkout: Scenario, tmp_path: Path) -> None:
    async with running_bot(checkout, tmp_path / "e2e.db") as harness:
        secret = harness.sb.ctx.secrets["pagerduty_webhook_secret"]
        payloads = [documented_event(t["event_type"], t["data_type"]) for t in EVENT_TYPES]
        payloads += [fixture("pagerduty", "webhooks", name) for name in FULL_EXAMPLES]
        payloads += [fixture("pagerduty", "deliveries", name) for name in RECORDED]
        statuses = []
        for payload in payloads:
            body, headers = signed(payload, secret)
            statuses.append((await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)).status_code)
        await harness.rt.idle()
    assert len(statuses) == len(EVENT_TYPES) + len(FULL_EXAMPLES) + len(RECORDED) == 34
    assert statuses == [202] * len(statuses)


async def test_a_trigger_delivered_late_is_briefed_after_pagerduty_says_it_is_open(
        checkout: Scenario, tmp_path: Path) -> None:
    async with running_bot(checkout, tmp_path / "e2e.db") as harness:
        body, headers = build_webhook(checkout, occurred_at=checkout.now - timedelta(hours=30))
        response = await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)
        assert response.status_code == 202
        await wait_for(harness.brief_message, "the brief in Slack")
        await harness.rt.idle()
        key = f"pd:{checkout.alert.incident_id}"
        calls = await harness.rt.store.list_tool_calls(key)
    checks = [c for c in calls if c.args.get("purpose")]
    assert [(c.tool, c.outcome, c.actor) for c in checks] == [("pagerduty.get_incident", "ok", "pagerduty-webhook")]
    assert json.loads(body)["event"]["occurred_at"].startswith(checks[0].args["occurred_at"][:13])
