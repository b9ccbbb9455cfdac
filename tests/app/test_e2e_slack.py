"""End to end through the real app: signed HTTP requests in, the sandbox's record out.

The bot runs exactly as `serve` runs it (Bolt AsyncApp behind Starlette and uvicorn, SQLite
through Alembic migrations); Slack, PagerDuty, Datadog, GitHub, Confluence and Jira are the
sandbox's wire-level fakes. Assertions are on what those fakes received.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import trigger, wait_for
from sandbox.scenario import Scenario
from tests.helpers.slack_app import Harness, running_bot


@pytest.fixture
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    scenario: Scenario = request.getfixturevalue(request.param)
    async with running_bot(scenario, tmp_path / "e2e.db") as running:
        yield running


@pytest.mark.parametrize("harness", ["checkout"], indirect=True)
async def test_pagerduty_brief_posts_once_and_a_double_click_files_one_ticket(
        harness: Harness, checkout: Scenario) -> None:
    body, headers = build_webhook(checkout, "incident.triggered")
    first = await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)
    retry = await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)  # PagerDuty retries
    assert first.status_code == 202
    assert retry.status_code == 202

    message = await wait_for(harness.brief_message, "the brief in Slack")
    await harness.rt.idle()
    assert len(harness.posts()) == 1, "the brief is posted once, whatever the retries"
    charts = harness.sb.system("slack").files
    assert len(charts) == 1, "the key metric is attached as a chart in the brief's thread"
    assert charts[0].thread_ts == message.ts
    assert (charts[0].content or b"").startswith(b"\x89PNG")
    assert "app.datadoghq.com" in (charts[0].initial_comment or ""), "Datadog's own graph link is kept"
    assert harness.sb.ctx.recorder.writes("jira") == [], "nothing is written to Jira before approval"
    incident_key = f"pd:{checkout.alert.to_alert().incident_id}"
    [check] = await harness.rt.store.list_brief_checks(incident_key)
    assert (check.drafter, check.outcome, check.coverage) == ("offline", "ok", 1.0), "the citation check is audited"
    assert await harness.rt.store.list_tool_calls(incident_key), "so is every read"

    # Two people (or one impatient one) click the button; both modals are submitted at once.
    slack = harness.sb.system("slack")
    button = next(e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]
                  if e["action_id"] == "ticket_create")
    for _ in range(2):
        click = slack_sender.block_actions_body(user="U0ONCALL1", channel=message.channel,
                                                message_ts=message.ts, action_id="ticket_create",
                                                value=button["value"])
        assert (await harness.post_signed(click)).status_code == 200
    views = await wait_for(lambda: slack.views[:2] if len(slack.views) >= 2 else None, "two modals")
    submits = [slack_sender.view_submission_body(user="U0ONCALL1", view=view,
                                                 values=slack_sender.initial_values(view)) for view in views]
    responses = await asyncio.gather(*(harness.post_signed(s) for s in submits))
    assert all(r.status_code == 200 for r in responses)
    await harness.rt.idle()
    created = await wait_for(lambda: list(harness.sb.system("jira").created) or None, "the ticket")
    await harness.rt.idle()
    assert len(created) == 1, "exactly one ticket after a double click"
    creates = [r for r in harness.sb.ctx.recorder.writes("jira") if r.method == "POST"]
    assert len(creates) == 1
    key = created[0]["key"]
    card = json.dumps(harness.brief_message().blocks)
    assert key in card, "the card shows the filed ticket"


@pytest.mark.parametrize("harness", ["checkout"], indirect=True)
async def test_unsigned_and_badly_signed_requests_are_rejected(harness: Harness) -> None:
    body = slack_sender.app_mention_body(channel="C0INCCHK", user="U0ONCALL1",
                                         text="<@UBRIEFBOT> brief checkout-api")
    unsigned = await slack_sender.post_to_bot(f"{harness.url}/slack/events", body,
                                              {"Content-Type": "application/json"})
    forged = await slack_sender.post_to_bot(f"{harness.url}/slack/events", body,
                                            slack_sender.signed_headers("not-the-secret", body))
    stale = await slack_sender.post_to_bot(
        f"{harness.url}/slack/events", body, slack_sender.signed_headers(harness.secret, body, timestamp=1))
    assert (unsigned.status_code, forged.status_code, stale.status_code) == (401, 401, 401)
    await asyncio.sleep(0.2)
    await harness.rt.idle()
    assert harness.posts() == [], "a rejected request posts nothing"


@pytest.mark.parametrize("harness", ["search_injection"], indirect=True)
async def test_injection_scenario_reports_the_gap_and_leaks_nothing(
        harness: Harness, search_injection: Scenario, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    await trigger(search_injection, harness.sb, harness.url)
    message = await wait_for(harness.brief_message, "the brief in Slack")
    await harness.rt.idle()
    card = json.dumps(message.blocks)
    assert "confluence" in card.lower(), "the Confluence outage is shown as a gap"
    assert harness.sb.ctx.recorder.writes("jira") == []

    # Everything the bot wrote: Slack requests, the database file, the logs.
    slack_bodies = " ".join(unquote_plus(r.body) for r in harness.sb.ctx.recorder.requests("slack"))
    database = harness.db_path.read_bytes().decode("utf-8", errors="replace")
    logs = caplog.text
    # Each place was written to, so the "not in" checks below say something.
    assert slack_bodies
    assert database
    assert logs
    # Secrets and PII are masked on the way in: nowhere the bot writes.
    for planted in ("jane.doe@example.com", "sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123"):
        for where, text in (("Slack", slack_bodies), ("the database", database), ("the logs", logs)):
            assert planted not in text, f"{planted!r} reached {where}"
    # Injected instructions are data: stored as evidence, never said in Slack or followed.
    for injected in ("v9.9.9", "<!channel>", "ignore all previous instructions"):
        assert injected.lower() not in slack_bodies.lower(), f"{injected!r} reached Slack"
    assert all("PROD" not in r.body for r in harness.sb.ctx.recorder.requests("jira"))
