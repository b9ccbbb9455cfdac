"""More end-to-end flows through signed requests: approvers, threads, status changes, Slack
rate limits, slash commands and a restart between approval and create."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.policy import default_policy
from bot.tickets.filing import recover_interrupted
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from tests.helpers.scenarios import with_faults
from tests.helpers.slack_app import Harness, page, running_bot


@pytest.fixture
async def bot(checkout: Scenario, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    scenario = request.getfixturevalue(request.param) if hasattr(request, "param") else checkout
    async with running_bot(scenario, tmp_path / "flows.db", policy=default_policy()) as running:
        yield running



async def _click_create(h: Harness, message: object, user: str) -> None:
    blocks = message.blocks
    button = next(e for b in blocks if b.get("type") == "actions" for e in b["elements"]
                  if e["action_id"] == "ticket_create")
    click = slack_sender.block_actions_body(user=user, channel=message.channel,
                                            message_ts=message.ts, action_id="ticket_create",
                                            value=button["value"])
    assert (await h.post_signed(click)).status_code == 200
    await asyncio.sleep(0.05)
    await h.rt.idle()


async def test_an_unauthorised_approver_is_told_why_and_gets_no_modal(bot: Harness, checkout: Scenario) -> None:
    message = await page(bot, checkout)
    slack = bot.sb.system("slack")
    await _click_create(bot, message, "U0OUTSIDER")
    note = await wait_for(lambda: [e for e in slack.ephemerals if e.user == "U0OUTSIDER"] or None, "ephemeral")
    assert "approver" in note[0].text.lower()
    # Checked once the click has been answered: before that, "no modal yet" would prove nothing.
    assert slack.views == []
    assert bot.sb.recorder.writes("jira") == []


async def test_status_changes_reply_in_the_thread_and_update_the_header(bot: Harness, checkout: Scenario) -> None:
    message = await page(bot, checkout)
    body, headers = build_webhook(checkout, "incident.acknowledged")
    assert (await send_webhook(f"{bot.url}/webhooks/pagerduty", body, headers)).status_code == 202
    await asyncio.sleep(0.05)
    await bot.rt.idle()
    slack = bot.sb.system("slack")
    replies = [m for m in slack.messages if m.thread_ts == message.ts]
    assert replies, "the status change is posted in the brief's thread"
    assert "acknowledged" in replies[0].text.lower()
    assert "acknowledged" in json.dumps(bot.brief_message().blocks).lower()
    assert len(bot.posts()) == 2, "one brief, one thread reply"


async def test_refresh_in_the_thread_updates_the_same_message(bot: Harness, checkout: Scenario) -> None:
    message = await page(bot, checkout)
    mention = slack_sender.app_mention_body(channel=message.channel, user="U0ONCALL1",
                                            text="<@UBRIEFBOT> refresh", thread_ts=message.ts)
    assert (await bot.post_signed(mention)).status_code == 200
    await asyncio.sleep(0.05)
    await bot.rt.idle()
    assert len(bot.posts()) == 1, "refresh edits the brief; it does not post another"
    updates = bot.sb.ctx.recorder.requests("slack", path_prefix="/api/chat.update")
    assert len(updates) >= 2
    latest = await bot.rt.store.get_brief(f"pd:{checkout.alert.incident_id}")
    assert latest is not None
    assert latest.version == 1, "unchanged evidence: no new brief version"


async def test_a_slash_command_without_a_service_asks_briefly(bot: Harness) -> None:
    response_url = bot.sb.url("slack") + "/response/cmd-1"
    body = slack_sender.slash_command_body("/brief", "", user="U0ONCALL1", channel="C0RANDOM",
                                           response_url=response_url)
    assert (await bot.post_signed(body)).status_code == 200
    answer = await wait_for(lambda: bot.sb.system("slack").responses or None, "the reply")
    assert "which service" in answer[0]["text"].lower()
    assert bot.posts() == []


@pytest.mark.parametrize("bot", [pytest.param("rate_limited", id="slack-429")], indirect=True)
async def test_slack_rate_limits_are_retried_after_the_delay(bot: Harness, checkout: Scenario) -> None:
    await page(bot, checkout)
    attempts = bot.sb.ctx.recorder.requests("slack", path_prefix="/api/chat.postMessage")
    assert [r.status for r in attempts][:2] == [429, 200]


@pytest.fixture
def rate_limited(checkout: Scenario) -> Scenario:
    return with_faults(checkout, errors={"slack.chat_postMessage": "http_429"})


async def test_a_restart_between_approval_and_create_files_one_ticket(bot: Harness, checkout: Scenario) -> None:
    message = await page(bot, checkout)
    latest = await bot.rt.store.get_brief(f"pd:{checkout.alert.incident_id}")
    assert latest is not None
    proposal = latest.result.brief.ticket
    assert proposal is not None
    approval = await bot.rt.approvals.propose(incident_key=f"pd:{checkout.alert.incident_id}", brief_version=1,
                                             proposal=proposal, requested_by="U0ONCALL1")
    await bot.rt.approvals.approve(approval.id, "U0ONCALL1", forbid_self_approval=False)
    claimed = await bot.rt.approvals.claim_for_execution(approval.id)
    assert claimed is not None
    # The process dies here, after creating the ticket but before recording it: simulate the
    # create having happened by filing it with the approval's label, then recover.
    from connectors.jira import JiraWriter

    writer = JiraWriter(bot.rt.settings.jira)
    await writer.create_issue(proposal.project, proposal.summary, proposal.description, "High",
                              ["incident-brief", claimed.idempotency_key])
    await writer.aclose()
    later = datetime.now(UTC) + timedelta(minutes=10)
    recovered = await recover_interrupted(bot.rt, later)
    assert [r.outcome.status for r in recovered] == ["already_filed"]
    assert len(bot.sb.system("jira").created) == 1
    assert (await bot.rt.approvals.get(approval.id)).jira_key == recovered[0].outcome.key
    del message


async def _modal(h: Harness, index: int) -> dict[str, object]:
    """The index-th modal opened; the click's handler may open it after the bot is idle again."""
    slack = h.sb.system("slack")
    view: dict[str, object] = await wait_for(lambda: slack.views[index] if len(slack.views) > index else None,
                                             f"modal #{index + 1}")
    return view


async def _submit_modal(h: Harness, view: dict[str, object], user: str) -> None:
    submit = slack_sender.view_submission_body(user=user, view=view, values=slack_sender.initial_values(view))
    assert (await h.post_signed(submit)).status_code == 200
    await asyncio.sleep(0.05)
    await h.rt.idle()


async def test_two_person_rule_files_only_after_a_second_approver(bot: Harness, checkout: Scenario) -> None:
    bot.rt.policy = default_policy().model_copy(
        update={"approvals": {"jira.create_issue": "two_person"}})
    message = await page(bot, checkout)
    slack = bot.sb.system("slack")
    await _click_create(bot, message, "U0ONCALL1")
    await _submit_modal(bot, await _modal(bot, 0), "U0ONCALL1")
    # The submission is answered in an ephemeral; wait for it, then check nothing was filed.
    await wait_for(lambda: [e for e in slack.ephemerals if e.user == "U0ONCALL1" and "second approver" in e.text]
                   or None, "the 'second approver' note")
    assert bot.sb.recorder.writes("jira") == [], "the requester alone is not enough"
    await _click_create(bot, message, "U0APPROVER")
    await _submit_modal(bot, await _modal(bot, 1), "U0APPROVER")
    created = await wait_for(lambda: list(bot.sb.system("jira").created) or None, "the ticket")
    assert len(created) == 1


async def test_dry_run_shows_the_exact_request_and_sends_nothing(bot: Harness, checkout: Scenario) -> None:
    bot.rt.policy = default_policy().model_copy(update={"default_mode": "dry_run"})
    message = await page(bot, checkout)
    slack = bot.sb.system("slack")
    await _click_create(bot, message, "U0ONCALL1")
    await _submit_modal(bot, await _modal(bot, 0), "U0ONCALL1")
    # The person sees the exact request that would have been sent (waited for: the answer may
    # come after the bot is idle; timing out here is the failure).
    preview = await wait_for(lambda: [e for e in slack.ephemerals if e.user == "U0ONCALL1"
                                      and "/rest/api/2/issue" in json.dumps(e.blocks)] or None, "the dry-run preview")
    assert bot.sb.recorder.writes("jira") == []
    assert "CHK" in json.dumps([e.blocks for e in preview])


async def test_thumbs_down_asks_for_a_reason_and_stores_it(bot: Harness, checkout: Scenario) -> None:
    message = await page(bot, checkout)
    blocks = message.blocks
    button = next(e for b in blocks if b.get("type") == "actions" for e in b["elements"]
                  if e["action_id"] == "feedback_down")
    click = slack_sender.block_actions_body(user="U0ONCALL1", channel=message.channel,
                                            message_ts=message.ts, action_id="feedback_down",
                                            value=button["value"])
    assert (await bot.post_signed(click)).status_code == 200
    slack = bot.sb.system("slack")
    view = await wait_for(lambda: slack.views[0] if slack.views else None, "the reason modal")
    block_id = next(b["block_id"] for b in view["blocks"] if b.get("type") == "input")
    reason = "blamed the deploy but it was the flag; reach me at jane.doe@example.com"
    submit = slack_sender.view_submission_body(user="U0ONCALL1", view=view,
                                               values={block_id: {"value": {"type": "plain_text_input",
                                                                            "value": reason}}})
    assert (await bot.post_signed(submit)).status_code == 200
    await asyncio.sleep(0.05)
    await bot.rt.idle()
    stored = await bot.rt.store.list_feedback(f"pd:{checkout.alert.incident_id}", 1)
    assert [f.vote for f in stored] == ["down"]
    assert stored[0].reason is not None
    assert "blamed the deploy" in stored[0].reason
    assert "jane.doe@example.com" not in stored[0].reason, "feedback text is redacted too"


async def test_slash_command_naming_a_service_posts_a_brief(bot: Harness) -> None:
    body = slack_sender.slash_command_body("/brief", "checkout-api", user="U0ONCALL1", channel="C0INCCHK",
                                           response_url=bot.sb.url("slack") + "/response/cmd-2")
    assert (await bot.post_signed(body)).status_code == 200
    message = await wait_for(bot.brief_message, "the brief in Slack")
    await bot.rt.idle()
    assert message.channel == "C0INCCHK"
    assert "checkout-api" in json.dumps(message.blocks)


async def test_two_approvers_at_once_file_one_ticket(bot: Harness, checkout: Scenario) -> None:
    message = await page(bot, checkout)
    slack = bot.sb.system("slack")
    await _click_create(bot, message, "U0ONCALL1")
    await _click_create(bot, message, "U0APPROVER")
    views = await wait_for(lambda: slack.views[:2] if len(slack.views) >= 2 else None, "two modals")
    submits = [slack_sender.view_submission_body(user=user, view=view, values=slack_sender.initial_values(view))
               for user, view in zip(("U0ONCALL1", "U0APPROVER"), views, strict=True)]
    responses = await asyncio.gather(*(bot.post_signed(body) for body in submits))
    assert [r.status_code for r in responses] == [200, 200]
    await asyncio.sleep(0.05)
    await bot.rt.idle()
    created = await wait_for(lambda: list(bot.sb.system("jira").created) or None, "the ticket")
    await asyncio.sleep(0.2)
    assert len(created) == 1
    assert len([r for r in bot.sb.recorder.writes("jira") if r.method == "POST"]) == 1
