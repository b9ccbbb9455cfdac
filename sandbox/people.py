"""The people and senders of an incident, played against a running bot: PagerDuty firing a
signed webhook, an engineer mentioning the bot, an approver clicking *Create Jira ticket* and
submitting the modal. The demo and the end-to-end tests use them; each is a signed request
over real HTTP, as the real sender would make it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.scenario import Scenario
from sandbox.server import Sandbox

T = TypeVar("T")


async def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll until `probe` returns something: Slack and Bolt finish work after their acks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


async def trigger(scenario: Scenario, sandbox: Sandbox, bot_url: str) -> None:
    """Fire the scenario's trigger at the bot the way the real sender would."""
    if scenario.alert.via == "pagerduty" and scenario.alert.incident_id:
        body, headers = build_webhook(scenario, "incident.triggered")
        response = await send_webhook(f"{bot_url}/webhooks/pagerduty", body, headers)
    else:
        channel = scenario.catalog[0].slack_channel if scenario.catalog else "C0DEMO"
        text = scenario.alert.mention_text or f"<@UBRIEFBOT> brief {scenario.alert.service}"
        mention = slack_sender.app_mention_body(channel=channel or "C0DEMO", user=scenario.alert.requested_by
                                                or "U0ONCALL1", text=text)
        response = await slack_sender.post_to_bot(
            f"{bot_url}/slack/events", mention,
            slack_sender.signed_headers(sandbox.ctx.secrets["slack_signing_secret"], mention))
    if response.status_code >= 300:
        raise RuntimeError(f"the bot rejected the trigger: HTTP {response.status_code} {response.text}")


def brief_message(sandbox: Sandbox) -> Any:
    """The posted brief once it has replaced its placeholder."""
    for message in sandbox.system("slack").messages:
        if any(b.get("block_id") == "actions" or b.get("type") == "actions" for b in message.blocks or []):
            return message
    return None


def button(message: Any, action_id: str) -> dict[str, Any] | None:
    for block in message.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return dict(element)
    return None


async def approve_ticket(sandbox: Sandbox, bot_url: str, message: Any, approver: str) -> None:
    """Click *Create Jira ticket* and submit the modal as it was prefilled."""
    secret = sandbox.ctx.secrets["slack_signing_secret"]
    found = button(message, "ticket_create")
    if found is None:
        raise RuntimeError("the brief has no Create Jira ticket button")
    slack = sandbox.system("slack")
    opened = len(slack.views)
    click = slack_sender.block_actions_body(user=approver, channel=message.channel, message_ts=message.ts,
                                            action_id="ticket_create", value=found["value"])
    await slack_sender.post_to_bot(f"{bot_url}/slack/events", click, slack_sender.signed_headers(secret, click))
    view = await wait_for(lambda: slack.views[opened] if len(slack.views) > opened else None, "the ticket modal")
    submit = slack_sender.view_submission_body(user=approver, view=view, values=slack_sender.initial_values(view))
    response = await slack_sender.post_to_bot(f"{bot_url}/slack/events", submit,
                                              slack_sender.signed_headers(secret, submit))
    if response.status_code != 200 or (response.content and json.loads(response.content).get("errors")):
        raise RuntimeError(f"the modal submission was refused: {response.text}")




def ticket_on_card(sandbox: Sandbox) -> bool:
    """The brief's card shows a filed ticket."""
    message = brief_message(sandbox)
    return bool(message) and "filed" in json.dumps(message.blocks)
