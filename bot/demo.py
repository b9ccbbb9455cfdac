"""`incident-brief demo`: one incident end to end, on this machine, with no credentials.

The sandbox plays every outside system; the bot runs as in production (Bolt app, webhook
endpoint, store, policy); the demo plays the people: PagerDuty fires a signed webhook, an
on-call engineer clicks *Create Jira ticket* and submits the modal, each as a signed request.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from bot.bootstrap import BUNDLED_POLICY, build_runtime, serving
from bot.catalog import Catalog
from bot.policy import load_policy
from bot.runtime import Runtime
from bot.scenario import Scenario
from bot.terminal import render_brief
from bot.web import build_web_app
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
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


def _brief_message(sandbox: Sandbox) -> Any:
    """The posted brief once it has replaced its placeholder."""
    for message in sandbox.system("slack").messages:
        if any(b.get("block_id") == "actions" or b.get("type") == "actions" for b in message.blocks or []):
            return message
    return None


def _button(message: Any, action_id: str) -> dict[str, Any] | None:
    for block in message.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return dict(element)
    return None


async def approve_ticket(sandbox: Sandbox, bot_url: str, message: Any, approver: str) -> None:
    """Click *Create Jira ticket* and submit the modal as it was prefilled."""
    secret = sandbox.ctx.secrets["slack_signing_secret"]
    button = _button(message, "ticket_create")
    if button is None:
        raise RuntimeError("the brief has no Create Jira ticket button")
    slack = sandbox.system("slack")
    opened = len(slack.views)
    click = slack_sender.block_actions_body(user=approver, channel=message.channel, message_ts=message.ts,
                                            action_id="ticket_create", value=button["value"])
    await slack_sender.post_to_bot(f"{bot_url}/slack/events", click, slack_sender.signed_headers(secret, click))
    view = await wait_for(lambda: slack.views[opened] if len(slack.views) > opened else None, "the ticket modal")
    submit = slack_sender.view_submission_body(user=approver, view=view, values=slack_sender.initial_values(view))
    response = await slack_sender.post_to_bot(f"{bot_url}/slack/events", submit,
                                              slack_sender.signed_headers(secret, submit))
    if response.status_code != 200 or (response.content and json.loads(response.content).get("errors")):
        raise RuntimeError(f"the modal submission was refused: {response.text}")


async def run_demo(scenario: Scenario, console: Console) -> int:
    started = time.perf_counter()
    with Sandbox(scenario) as sandbox, tempfile.TemporaryDirectory() as tmp:
        settings = sandbox.settings(database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}")
        rt: Runtime = await build_runtime(settings, policy=load_policy(BUNDLED_POLICY),
                                          catalog=Catalog(scenario.service_entries()), now=lambda: scenario.now)
        async with serving(build_web_app(rt)) as bot_url:
            console.print(f"[bold]1.[/bold] {scenario.alert.via} trigger → bot at {bot_url}")
            await trigger(scenario, sandbox, bot_url)
            message = await wait_for(lambda: _brief_message(sandbox), "the brief in Slack", timeout=45)
            await rt.idle()
            incident = await rt.store.latest_incident_in_channel(message.channel)
            latest = await rt.store.get_brief(incident.key) if incident else None
            if latest is None:
                raise RuntimeError("no brief was stored")
            result = latest.result
            console.print(f"[bold]2.[/bold] brief posted in {message.channel} (ts {message.ts}); "
                          f"Jira writes so far: {len(sandbox.recorder.writes('jira'))}")
            render_brief(result, console, title=f"Brief · {scenario.alert.title}")
            approver = scenario.alert.requested_by or "U0ONCALL1"
            console.print(f"[bold]3.[/bold] {approver} clicks [i]Create Jira ticket[/i] and submits the modal")
            await approve_ticket(sandbox, bot_url, message, approver)
            jira = sandbox.system("jira")
            created = await wait_for(lambda: list(jira.created) or None, "the Jira ticket")
            await wait_for(lambda: _ticket_on_card(sandbox), "the ticket key on the card")
            await rt.idle()
        key_filed = created[0]["key"]
        console.print(f"[bold]4.[/bold] ticket filed: [bold green]{key_filed}[/bold green] "
                      f"({len(created)} ticket, {len(sandbox.recorder.writes('jira'))} Jira write) — "
                      f"done in {time.perf_counter() - started:.1f}s")
    return 0


def _ticket_on_card(sandbox: Sandbox) -> bool:
    message = _brief_message(sandbox)
    return bool(message) and "filed" in json.dumps(message.blocks)
