"""The bot served as `serve` serves it, against a scenario's sandbox: what the end-to-end tests
drive with signed requests and judge by what the sandbox's fakes received.

`sandboxed_runtime` builds the runtime through `bot.app.bootstrap` (SQLite through Alembic, the
real Slack client pointed at the sandbox), for tests that call the flows directly; `running_bot`
also serves the web app on a loopback port, and `Harness` is what a test holds while it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app.bootstrap import build_runtime, serving
from bot.app.web import build_web_app
from bot.core.policy import Policy, default_policy
from bot.draft.drafter import Drafter
from bot.intake.catalog import Catalog
from bot.runtime import Runtime
from sandbox import slack_sender
from sandbox.scenario import Scenario
from sandbox.server import Sandbox


@dataclass
class Harness:
    sb: Sandbox
    rt: Runtime
    url: str
    db_path: Path

    @property
    def secret(self) -> str:
        return str(self.sb.ctx.secrets["slack_signing_secret"])

    def posts(self) -> list[Any]:
        return self.sb.ctx.recorder.requests("slack", path_prefix="/api/chat.postMessage")

    def brief_message(self) -> Any:
        for message in self.sb.system("slack").messages:
            if any(block.get("type") == "actions" for block in message.blocks or []):
                return message
        return None

    async def post_signed(self, body: str) -> Any:
        return await slack_sender.post_to_bot(f"{self.url}/slack/events", body,
                                              slack_sender.signed_headers(self.secret, body))


@contextlib.asynccontextmanager
async def sandboxed_runtime(scenario: Scenario, db_path: Path, *, policy: Policy | None = None,
                            model: bool = False, socket_mode: bool = False) -> AsyncIterator[tuple[Sandbox, Runtime]]:
    """The scenario's sandbox and a runtime built as `serve` builds it, every client pointed at
    the sandbox, the store a migrated SQLite file; background work is waited for on exit.
    The sandbox's settings name its model endpoint, so `serve` would draft with the model;
    these tests draft offline (deterministic briefs) unless `model` is set. With `socket_mode`
    the sandbox also runs Slack's Socket Mode WebSocket and the settings turn Socket Mode on."""
    with Sandbox(scenario, socket_mode=socket_mode) as sb:
        settings = sb.settings(database_url=f"sqlite+aiosqlite:///{db_path}")
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"enabled": model})})
        rt = await build_runtime(settings, policy=policy or default_policy(),
                                 catalog=Catalog(scenario.service_entries()), now=lambda: scenario.now)
        yield sb, rt
        await rt.idle()


@contextlib.asynccontextmanager
async def running_bot(scenario: Scenario, db_path: Path, *, policy: Policy | None = None,
                      drafter: Callable[[Sandbox, Runtime], Callable[[], Drafter]] | None = None,
                      ) -> AsyncIterator[Harness]:
    """`sandboxed_runtime` with the web app served on a loopback port and, as `serve` has it, background work
    on the runtime's worker loop. ``drafter`` builds the
    runtime's drafter factory once the sandbox and the store exist (a model drafter needs
    both); the default is the offline drafter."""
    async with sandboxed_runtime(scenario, db_path, policy=policy) as (sb, rt):
        if drafter is not None:
            rt.drafter = drafter(sb, rt)
        rt.start_worker()  # as `serve` runs: background work on the worker loop, acks on this one
        try:
            async with serving(build_web_app(rt)) as url:
                yield Harness(sb, rt, url, db_path)
                await rt.idle()
        finally:
            await rt.stop_worker(grace_s=30)


async def page(h: Harness, scenario: Scenario) -> Any:
    """Trigger the scenario's incident through the signed PagerDuty webhook and wait until its
    brief is in Slack and the bot is idle; the brief's message."""
    from sandbox.pagerduty import build_webhook, send_webhook
    from sandbox.people import wait_for

    body, headers = build_webhook(scenario, "incident.triggered")
    assert (await send_webhook(f"{h.url}/webhooks/pagerduty", body, headers)).status_code == 202
    message = await wait_for(h.brief_message, "the brief in Slack")
    await h.rt.idle()
    return message
