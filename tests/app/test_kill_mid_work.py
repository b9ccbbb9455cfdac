"""Issue 13's fault drills with real processes: `incident-brief serve`, started as the Procfile
starts it, is killed with SIGKILL mid-brief and mid-approval; a real `clock` process and a
restarted `serve` on the same database finish what it left, once. Each drill runs on SQLite and
on PostgreSQL (which fails under ``CI=true`` when the server is missing, as every store test does).

`tests/slack/test_publish_lifecycle.py` and `tests/app/test_e2e_hardening.py` drill the same
failures in-process (a cancelled task, a create answered too late); here nothing of the dead
process runs after the kill: no `finally`, no flushed buffer, no released lease. The sandbox
runs in the test process, so the test sees what Slack and Jira received and slows a system down
or heals it while the bot runs. Time is the one thing the test moves: a dead worker's lease or
claim is set to have run out (an UPDATE of the row), instead of waiting minutes for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.policy import BUNDLED_POLICY
from bot.store.approvals import Approval, Approvals, ApprovalState
from bot.store.db import create_engine_for, session_factory
from bot.store.repo import IncidentRecord, Store
from bot.store.tables import ApprovalRow, IncidentRow
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import approve_ticket, button, wait_for
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from sandbox.slack import APPROVER, SlackMessage
from sandbox.standalone import at_now, fire, prepare
from tests.helpers.scenarios import with_faults
from tests.helpers.serve_process import ClockProcess, ServeProcess, clock_process, serve_process

T = TypeVar("T")
WAIT_S = 90.0  # a brief drafted, or a clock started, by another process on a busy 2-core machine
REQUESTER = "U0ONCALL1"
CREATE = "jira.create_issue"


@dataclass
class Drill:
    sb: Sandbox
    scenario: Scenario
    folder: Path
    env_file: Path
    engine: AsyncEngine
    env: dict[str, str]
    serves: int = 0

    @property
    def key(self) -> str:
        return f"pd:{self.scenario.alert.incident_id}"

    @property
    def store(self) -> Store:
        return Store(session_factory(self.engine))

    def serve(self) -> contextlib.AbstractContextManager[ServeProcess]:
        self.serves += 1
        return serve_process(self.env_file, self.folder / f"serve-{self.serves}.log", env=self.env)

    @contextlib.contextmanager
    def clock_and_serve(self) -> Iterator[tuple[ClockProcess, ServeProcess]]:
        """The clock and a restarted serve on the same database, started at once: each start-up
        is seconds of imports on a busy machine, and a platform restarts the one as the other runs."""
        with contextlib.ExitStack() as stack, ThreadPoolExecutor(2) as pool:
            clock = pool.submit(stack.enter_context, clock_process(self.env_file, self.folder / "clock.log",
                                                                   env=self.env))
            serve = pool.submit(stack.enter_context, self.serve())
            yield clock.result(), serve.result()

    def slow(self, **latency_ms: int) -> None:
        self.sb.ctx.scenario = with_faults(self.scenario, latency_ms=latency_ms)

    def heal(self) -> None:
        self.sb.ctx.scenario = self.scenario  # the world as it was: no system slowed down

    async def incident(self) -> IncidentRecord:
        incident = await self.store.get_incident(self.key)
        assert incident is not None
        return incident

    async def approvals(self) -> list[Approval]:
        return await Approvals(session_factory(self.engine)).list_for_incident(self.key)

    def cards(self) -> list[SlackMessage]:
        """The top-level messages in the incident's channel: its card, and anything posted beside it."""
        channel = self.scenario.catalog[0].slack_channel
        return [m for m in self.sb.system("slack").messages if m.channel == channel and m.thread_ts is None]

    def requests(self, path: str) -> list[Any]:
        return self.sb.recorder.requests("slack", path_prefix=f"/api/{path}")

    async def final(self) -> IncidentRecord | None:
        incident = await self.store.get_incident(self.key)
        return incident if incident is not None and incident.publish_state == "final" else None


@pytest.fixture
async def drill(checkout: Scenario, tmp_path: Path, db_url: str) -> AsyncIterator[Drill]:
    """On SQLite (embedded) and PostgreSQL (scale-out): a killed process drops its connections,
    its open transaction and, on PostgreSQL, its session's locks; the other processes go on."""
    scenario = at_now(checkout)
    # The first version waits 30 s for a slow source (the bundled policy: 4 s), so a kill a
    # moment after the placeholder is up finds the brief mid-gather however loaded the machine.
    policy = tmp_path / "policy.yaml"
    policy.write_text(BUNDLED_POLICY.read_text().replace("first_post_s: 4.0", "first_post_s: 30.0"))
    assert "first_post_s: 30.0" in policy.read_text()
    with Sandbox(scenario) as sb:
        env_file = prepare(sb, tmp_path / "sandbox", database_url=db_url)
        engine = create_engine_for(db_url)
        try:
            yield Drill(sb, scenario, tmp_path, env_file, engine, {"IB_POLICY_FILE": str(policy)})
        finally:
            await engine.dispose()


async def until(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if found := await probe():
            return found
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def block_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [str(block.get("block_id")) for block in blocks]


def card_text(message: SlackMessage) -> str:
    return json.dumps(message.blocks)


async def test_a_serve_killed_mid_gather_leaves_a_placeholder_the_clock_finishes_in_place(drill: Drill) -> None:
    sb = drill.sb
    drill.slow(github=5000)  # each GitHub read: the brief is still gathering when the test kills it
    # One delivery, sent twice: PagerDuty redelivers the same signed body when it doubts the first.
    delivery, headers = build_webhook(drill.scenario, "incident.triggered", occurred_at=datetime.now(UTC),
                                      secret=sb.ctx.secrets["pagerduty_webhook_secret"])
    with drill.serve() as bot:
        answer = await send_webhook(f"{bot.url}/webhooks/pagerduty", delivery, headers)
        assert answer.status_code == 202, answer.text

        async def mid_gather() -> bool:
            asked = sb.recorder.arrivals("github", "github.list_deployments")
            placeholder = [m for m in drill.cards() if block_ids(m.blocks)[:1] == ["placeholder"]]
            incident = await drill.store.get_incident(drill.key)
            return bool(asked and placeholder and incident and incident.publish_state == "posted")

        await until(mid_gather, "the placeholder posted and GitHub asked")
        bot.kill()
    [card] = drill.cards()
    assert block_ids(card.blocks)[0] == "placeholder", "killed before any version of the brief"
    assert (await drill.incident()).publish_state == "posted"

    drill.heal()  # GitHub answers again
    # The lease has run out: the test moves time, not the bot (a real clock would wait minutes).
    async with drill.engine.begin() as conn:
        await conn.execute(update(IncidentRow).where(IncidentRow.key == drill.key)
                           .values(publish_retry_at=datetime.now(UTC) - timedelta(seconds=1)))
    with drill.clock_and_serve() as (clock, bot):
        finished = f"finished publishing the brief for {drill.key}"  # logged once the card is final
        await wait_for(lambda: finished in clock.stderr() or None, "the clock to finish the brief", timeout=WAIT_S)
        [card] = drill.cards()
        assert "actions" in block_ids(card.blocks), "the brief's buttons, on the placeholder's message"
        assert "ticket_create" in card_text(card)
        assert block_ids(card.updates[0]["blocks"])[0] == "placeholder", "the same message, updated in place"
        assert len(drill.requests("chat.postMessage")) == 1
        assert drill.requests("chat.update"), "finished with chat.update"

        # The restarted serve: PagerDuty's redelivery is a duplicate (the dedupe outlived the kill).
        again = await send_webhook(f"{bot.url}/webhooks/pagerduty", delivery, headers)
        assert again.status_code == 202, again.text
        assert "duplicate" in again.json(), again.text
        assert "Traceback" not in clock.stderr() + bot.stderr()
    assert len(drill.cards()) == 1
    assert len(drill.requests("chat.postMessage")) == 1, "nothing new posted"
    assert (await drill.incident()).publish_state == "final"


async def test_a_serve_killed_inside_the_jira_create_files_the_ticket_once(drill: Drill) -> None:
    sb, jira = drill.sb, drill.sb.system("jira")
    with drill.serve() as bot:
        assert (await fire(drill.scenario, bot.url)).status_code == 202
        await until(drill.final, "the brief")
        [card] = drill.cards()
        found = button(card, "ticket_create")
        assert found is not None
        # Jira takes 3 s to file: serve is inside the create, its request at Jira, when it dies.
        drill.slow(**{CREATE: 3000})
        await approve_ticket(sb, bot.url, card, REQUESTER)
        await wait_for(lambda: sb.recorder.arrivals("jira", CREATE) or None, "the create at Jira", timeout=WAIT_S)
        bot.kill()
    [approval] = await drill.approvals()
    assert (approval.state, approval.jira_key) == (ApprovalState.EXECUTING, None), "the bot never heard back"
    # Jira files what it received: the ticket exists, and only its label says whose it is.
    [created] = await wait_for(lambda: list(jira.created) or None, "Jira filing the dead process's create")
    key = created["key"]
    assert "ticket_create" in card_text(card), "nothing recorded: the card still has its button"

    drill.heal()
    # The claim has run out: the test moves time, not the bot (recovery waits for a claim older
    # than the clock's `stuck_after`, 5 minutes, so a live filing is never taken over).
    assert approval.claimed_at is not None
    async with drill.engine.begin() as conn:
        await conn.execute(update(ApprovalRow).where(ApprovalRow.id == approval.id)
                           .values(claimed_at=approval.claimed_at - timedelta(minutes=10)))
    slack = sb.system("slack")
    views = len(slack.views)
    with drill.clock_and_serve() as (clock, bot):
        await wait_for(lambda: f"Jira ticket *{key}* filed" in card_text(card) or None, "the ticket on the card",
                       timeout=WAIT_S)
        told = await wait_for(lambda: [m.text for m in slack.messages if m.thread_ts == card.ts and key in m.text]
                              or None, "the thread reply")
        assert f"recovered an interrupted ticket approval: already_filed {key}" in clock.stderr()
        assert f"<@{REQUESTER}>" in told[0]
        assert "ticket_create" not in card_text(card), "the card lost its button"
        [approval] = await drill.approvals()
        assert (approval.state, approval.jira_key) == (ApprovalState.DONE, key)

        # The restarted serve: a second approver's stale click, and the first modal submitted again.
        updates = len(drill.requests("chat.update"))
        secret = sb.ctx.secrets["slack_signing_secret"]
        click = slack_sender.block_actions_body(user=APPROVER, channel=card.channel, message_ts=card.ts,
                                                action_id="ticket_create", value=found["value"])
        await slack_sender.post_to_bot(f"{bot.url}/slack/events", click, slack_sender.signed_headers(secret, click))
        answered = await wait_for(lambda: [e.text for e in slack.ephemerals if e.user == APPROVER] or None,
                                  "the answer to the stale click", timeout=WAIT_S)
        assert f"already filed for this incident: {key}. Nothing was filed." in answered[0]
        resubmit = slack_sender.view_submission_body(user=REQUESTER, view=slack.views[0],
                                                     values=slack_sender.initial_values(slack.views[0]))
        response = await slack_sender.post_to_bot(f"{bot.url}/slack/events", resubmit,
                                                  slack_sender.signed_headers(secret, resubmit))
        assert response.status_code == 200, response.text
        # Already filed: the card is shown again with its key, and nothing is sent to Jira.
        await wait_for(lambda: len(drill.requests("chat.update")) > updates or None, "the card shown again",
                       timeout=WAIT_S)
        assert "Traceback" not in clock.stderr() + bot.stderr()
    assert len(slack.views) == views, "the stale click opens no modal"
    assert f"Jira ticket *{key}* filed" in card_text(card)
    assert sb.recorder.arrivals("jira", CREATE) == 1, "one create ever reached Jira"
    assert len(jira.created) == 1
    [approval] = await drill.approvals()
    assert (approval.state, approval.jira_key) == (ApprovalState.DONE, key)
