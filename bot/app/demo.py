"""`incident-brief demo`: one incident end to end, on this machine, with no credentials.

The sandbox plays every outside system; the bot runs as in production (Bolt app, webhook
endpoint, store, policy); the demo plays the people: PagerDuty fires a signed webhook, an
on-call engineer clicks *Create Jira ticket* and submits the modal, each as a signed request.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from bot.app.bootstrap import BUNDLED_POLICY, build_runtime, serving
from bot.app.terminal import render_brief
from bot.app.web import build_web_app
from bot.core.policy import load_policy
from bot.intake.catalog import Catalog
from bot.runtime import Runtime
from sandbox.people import approve_ticket, brief_message, ticket_on_card, trigger, wait_for
from sandbox.scenario import Scenario
from sandbox.server import Sandbox


async def run_demo(scenario: Scenario, console: Console, *, model: bool = False) -> int:
    """`model`: draft through the gateway with the sandbox's simulated model; by default the
    offline drafter drafts, as the bot does with no model configured."""
    started = time.perf_counter()
    with Sandbox(scenario) as sandbox, tempfile.TemporaryDirectory() as tmp:
        settings = sandbox.settings(database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}")
        if not model:
            settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"enabled": False})})
        rt: Runtime = await build_runtime(settings, policy=load_policy(BUNDLED_POLICY),
                                          catalog=Catalog(scenario.service_entries()), now=lambda: scenario.now)
        rt.start_worker()  # as `serve` runs: briefs draft on the worker loop, acks on this one
        try:
            async with serving(build_web_app(rt)) as bot_url:
                console.print(f"[bold]1.[/bold] {scenario.alert.via} trigger → bot at {bot_url}")
                await trigger(scenario, sandbox, bot_url)
                message = await wait_for(lambda: brief_message(sandbox), "the brief in Slack", timeout=45)
                await rt.idle()
                incident = await rt.store.latest_incident_in_channel(message.channel)
                latest = await rt.store.get_brief(incident.key) if incident else None
                if incident is None or latest is None:
                    raise RuntimeError("no brief was stored")
                result = latest.result
                console.print(f"[bold]2.[/bold] brief posted in {message.channel} (ts {message.ts}); "
                              f"Jira writes so far: {len(sandbox.recorder.writes('jira'))}")
                render_brief(result, console, title=f"Brief · {scenario.alert.title}")
                await _say_how_it_was_drafted(rt, incident.key, console)
                approver = scenario.alert.requested_by or "U0ONCALL1"
                console.print(f"[bold]3.[/bold] {approver} clicks [i]Create Jira ticket[/i] and submits the modal")
                await approve_ticket(sandbox, bot_url, message, approver)
                jira = sandbox.system("jira")
                created = await wait_for(lambda: list(jira.created) or None, "the Jira ticket")
                await wait_for(lambda: ticket_on_card(sandbox), "the ticket key on the card")
                await rt.idle()
                async with httpx.AsyncClient() as client:
                    exposition = (await client.get(f"{bot_url}/metrics")).text
        finally:
            await rt.stop_worker(grace_s=10)
        key_filed = created[0]["key"]
        console.print(f"[bold]4.[/bold] ticket filed: [bold green]{key_filed}[/bold green] "
                      f"({len(created)} ticket, {len(sandbox.recorder.writes('jira'))} Jira write) — "
                      f"done in {time.perf_counter() - started:.1f}s")
        console.print(f"[bold]5.[/bold] the bot's /metrics: {metrics_summary(exposition)}", highlight=False)
    return 0


def metrics_summary(exposition: str) -> str:
    """A few of the counters `/metrics` served during the demo, read back with Prometheus's parser."""
    totals: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                outcome = sample.labels.get("outcome", "")
                totals[(sample.name, outcome)] = totals.get((sample.name, outcome), 0.0) + sample.value

    def count(name: str, outcome: str | None = None) -> int:
        return int(sum(v for (n, o), v in totals.items() if n == name and outcome in (None, o)))

    tools = "incident_brief_tool_calls_total"
    return (f"{count('incident_brief_briefs_total')} brief, {count(tools)} tool calls "
            f"({count(tools, 'gap') + count(tools, 'error')} failed), "
            f"{count('incident_brief_model_calls_total')} model calls, "
            f"{count('incident_brief_webhook_deliveries_total', 'accepted')} webhook accepted, "
            f"{count('incident_brief_approvals_total', 'filed')} approval filed")


async def _say_how_it_was_drafted(rt: Runtime, key: str, console: Console) -> None:
    """The live path's model calls and spend, as `serve` records them (the model is simulated)."""
    calls = await rt.store.list_model_calls(key)
    if not calls:
        console.print("   drafted offline, no model involved (`incident-brief demo --model` drafts with the "
                      "sandbox's simulated model instead)")
        return
    workspace = rt.settings.llm.workspace
    spent = await rt.store.spend_month(workspace, datetime.now(UTC).date())
    console.print(f"   drafted through the gateway by the sandbox's [bold]simulated[/bold] model: {len(calls)} model "
                  f"call(s) audited under {key}; ${spent.usd:.4f} ({spent.tokens} tokens) charged to workspace "
                  f"{workspace} (simulated prices; `incident-brief spend` shows the ledger)")
