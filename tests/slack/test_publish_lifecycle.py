"""The publish lifecycle, over real HTTP against the sandbox's Slack and sources:

- a brief never waits for the slowest source: it is posted at the policy's deadline with the
  slow source marked pending, then updated in place, the final version saying what changed;
- publishing is a retriable step of the incident's stored state (claimed → posted → updated →
  final): Slack answering 5xx or 429 (past the client's own retries) on the first post or on the
  update, or a process killed mid-brief, leaves the incident short of final; the clock finishes
  it (with back-off and a bound) and a redelivery of an incident never posted resumes it. A
  short rate limit is waited out by the runtime's own client (as configured for production)
  and leaves nothing to finish.

Faults are the sandbox's own (`world.faults`), switched off mid-test by giving the sandbox the
same world without them, as a Slack outage ends. A "killed" process is a brief task cancelled
mid-gather: what it leaves in the store is what kill -9 leaves (the writes made so far).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from bot.app.bootstrap import build_runtime
from bot.app.clock import Maintenance
from bot.app.reports import report_lines
from bot.core.audit import BRIEF_ABANDONED
from bot.core.keys import incident_key
from bot.core.models import Alert, ServiceEntry, Source
from bot.core.policy import Policy, Timing, default_policy
from bot.intake.catalog import Catalog
from bot.runtime import Runtime
from bot.slack.publish import RETRY, lease, publish_brief
from bot.store.reports import Reports
from bot.telemetry import metrics
from sandbox.harness import scenario_service
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.scenarios import with_faults
from tests.helpers.slack_app import sandboxed_runtime
from tests.helpers.telemetry import sandbox_model


def timed_policy(first_post_s: float, **source_timeout_s: float) -> Policy:
    return default_policy().model_copy(update={"timing": Timing(first_post_s=first_post_s,
                                                                source_timeout_s=source_timeout_s)})


@dataclass
class Bot:
    sb: Sandbox
    rt: Runtime
    scenario: Scenario
    alert: Alert
    service: ServiceEntry
    channel: str
    key: str

    async def publish(self) -> str | None:
        return await publish_brief(self.rt, self.alert, self.service, self.channel)

    def top(self) -> list[Any]:
        return [m for m in self.sb.system("slack").messages if m.thread_ts is None]

    def posts(self) -> list[Any]:
        return self.sb.recorder.requests("slack", path_prefix="/api/chat.postMessage")

    def faults_off(self) -> None:
        """The outage ends: the same world, no faults."""
        self.sb.ctx.scenario = with_faults(self.scenario)

    def later(self, delta: timedelta) -> None:
        self.rt.now = lambda: self.scenario.now + delta

    async def fail_every_attempt(self) -> None:
        """The live attempt, then the clock past each back-off and once more: every attempt the
        step has. The clock's bound, not the client's: without its 5xx retries (0.5 s and 1 s
        each attempt) the tests are as telling and 9 s faster; the client's are shown elsewhere."""
        self.rt.slack.retry_handlers.clear()
        with pytest.raises(SlackApiError):
            await self.publish()
        clock = Maintenance(self.rt)
        waited = timedelta(0)
        for attempt in range(1, RETRY.max_attempts + 2):
            waited += RETRY.backoff(attempt) + timedelta(seconds=1)
            self.later(waited)
            await clock.finish_publishing()

    async def state(self) -> tuple[str, int, str | None]:
        incident = await self.rt.store.get_incident(self.key)
        assert incident is not None
        return incident.publish_state, incident.publish_attempts, incident.publish_error


def block_ids(message: Any) -> list[str]:
    blocks = message["blocks"] if isinstance(message, dict) else message.blocks
    return [str(block.get("block_id")) for block in blocks]


def progress_text(message: Any) -> str:
    blocks = message["blocks"] if isinstance(message, dict) else message.blocks
    return json.dumps([b for b in blocks if b.get("block_id") == "progress"])


@pytest.fixture
def make_bot(tmp_path: Path) -> Any:
    @contextlib.asynccontextmanager
    async def make(scenario: Scenario, policy: Policy | None = None, *, model: bool = False) -> AsyncIterator[Bot]:
        async with sandboxed_runtime(scenario, tmp_path / "lifecycle.db", policy=policy, model=model) as (sb, rt):
            alert = scenario.alert.to_alert()
            service = scenario_service(scenario)
            channel = service.slack_channel or "C0INCIDENT"
            yield Bot(sb, rt, scenario, alert, service, channel, incident_key(alert, channel=channel))
    return make


# --- a brief that never waits for the slowest source ----------------------------------------


async def test_a_slow_source_is_marked_pending_and_the_same_message_is_updated_when_it_answers(
        checkout: Scenario, make_bot: Any) -> None:
    # The deadline leaves the other sources room on a loaded machine (CI saw them take ~1 s).
    # GitHub's read is several requests in a row, so at 1.5 s each it outlasts the deadline by
    # far; its own timeout is further off still.
    slow = with_faults(checkout, latency_ms={"github": 1500})
    async with make_bot(slow, timed_policy(2.5, github=30.0)) as bot:
        ts = await bot.publish()

        [card] = bot.top()
        assert card.ts == ts
        versions = [*card.updates, {"blocks": card.blocks}]
        assert block_ids(versions[0])[0] == "placeholder"
        early, final = versions[1], versions[2]
        assert "Pending: GitHub" in progress_text(early)
        assert "Pending" not in progress_text(final)
        assert "GitHub answered" in progress_text(final)
        assert "top cause" in progress_text(final)
        stored = await bot.rt.store.list_briefs(bot.key)
        assert [b.result.pending for b in stored] == [[Source.GITHUB], []]
        assert not any(e.source == Source.GITHUB for e in stored[0].result.evidence)
        assert any(e.source == Source.GITHUB for e in stored[1].result.evidence)
        assert await bot.state() == ("final", 1, None)
        assert len(bot.posts()) == 1, "one message, updated in place"


async def test_a_source_that_times_out_is_pending_then_named_as_a_gap_within_its_own_timeout(
        checkout: Scenario, make_bot: Any) -> None:
    stuck = with_faults(checkout, errors={"github": "timeout"})
    async with make_bot(stuck, timed_policy(2.5, github=4.0)) as bot:
        await bot.publish()
        [card] = bot.top()
        assert "Pending: GitHub" in progress_text(card.updates[1])
        final = progress_text(card)
        assert "GitHub did not answer" in final
        assert "no answer within 4s" in final
        latest = await bot.rt.store.get_brief(bot.key)
        assert latest is not None
        assert latest.result.final
        assert [gap.source for gap in latest.result.gaps] == [Source.GITHUB]


async def test_everything_in_before_the_deadline_posts_one_version(checkout: Scenario, make_bot: Any) -> None:
    async with make_bot(checkout, timed_policy(10.0)) as bot:
        await bot.publish()
        [card] = bot.top()
        assert [block_ids(v)[0] for v in card.updates] == ["placeholder"]
        assert "progress" not in block_ids(card)
        assert len(await bot.rt.store.list_briefs(bot.key)) == 1


async def test_a_model_still_drafting_at_the_deadline_gets_the_offline_brief_posted_first(
        checkout: Scenario, make_bot: Any) -> None:
    slow_model = with_faults(checkout, latency_ms={"llm": 5000})
    async with make_bot(slow_model, timed_policy(2.5), model=True) as bot:
        with sandbox_model():  # the loopback sandbox's simulated model, never a provider
            await bot.publish()
        [card] = bot.top()
        assert "Pending: the model" in progress_text(card.updates[1])
        assert "the model drafted this version" in progress_text(card)
        stored = await bot.rt.store.list_briefs(bot.key)
        assert [(b.drafter, b.result.pending) for b in stored] == [("offline", [Source.LLM]), ("llm", [])]
        assert await bot.state() == ("final", 1, None)


# --- Slack failing on the first post ---------------------------------------------------------


async def test_a_5xx_on_the_first_post_is_resumed_by_the_redelivery_not_dropped(checkout: Scenario,
                                                                                make_bot: Any) -> None:
    down = with_faults(checkout, errors={"slack.chat_postMessage": "http_500"})
    async with make_bot(down) as bot:
        with pytest.raises(SlackApiError):
            await bot.publish()
        state, attempts, error = await bot.state()
        assert (state, attempts) == ("claimed", 1)
        assert error is not None
        assert "post" in error
        assert bot.top() == []

        bot.faults_off()
        ts = await bot.publish()  # PagerDuty's redelivery (or a new delivery) of the same incident
        assert ts is not None
        [card] = bot.top()
        assert "actions" in block_ids(card)
        assert await bot.state() == ("final", 2, None)
        assert await bot.publish() is None, "once posted, a duplicate is a duplicate again"
        assert len(bot.top()) == 1


async def test_a_redelivery_after_the_incident_resolved_posts_the_brief_once_as_resolved(
        checkout: Scenario, make_bot: Any) -> None:
    down = with_faults(checkout, errors={"slack.chat_postMessage": "http_500"})
    async with make_bot(down) as bot:
        with pytest.raises(SlackApiError):
            await bot.publish()
        resolved_at = checkout.now + timedelta(minutes=2)
        assert await bot.rt.store.advance_incident_status(bot.key, "resolved", resolved_at)
        bot.faults_off()
        ts = await bot.publish()  # PagerDuty's redelivery of the trigger
        [card] = bot.top()
        assert card.ts == ts
        assert card.updates == [], "no placeholder first"
        assert "ticket_create" not in json.dumps(card.blocks)
        status = json.dumps([b for b in card.blocks if b.get("block_id") == "status"])
        assert f"Resolved at {resolved_at:%H:%M} UTC" in status
        assert await bot.state() == ("final", 2, None)
        assert await bot.publish() is None, "posted: a duplicate again"


async def test_a_short_rate_limit_on_the_first_post_is_waited_out_by_the_client(checkout: Scenario,
                                                                                 make_bot: Any) -> None:
    limited = with_faults(checkout, errors={"slack.chat_postMessage": "http_429"}, retry_after_s=1)
    async with make_bot(limited) as bot:  # the runtime's own client, retrying as in production
        ts = await bot.publish()
        assert ts is not None
        assert [r.status for r in bot.posts()] == [429, 200]
        [card] = bot.top()
        assert "actions" in block_ids(card)
        assert await bot.state() == ("final", 1, None), "waited out inside the attempt: nothing for the clock"


async def test_a_429_outlasting_the_clients_retries_on_the_first_post_is_finished_by_the_clock(
        checkout: Scenario, make_bot: Any) -> None:
    limited = with_faults(checkout, errors={"slack.chat_postMessage": "http_429_persistent"}, retry_after_s=0)
    async with make_bot(limited) as bot:
        with pytest.raises(SlackApiError, match="ratelimited"):
            await bot.publish()
        assert [r.status for r in bot.posts()] == [429] * 4, "the client's 3 retries, each after Retry-After"
        assert (await bot.state())[0] == "claimed"

        clock = Maintenance(bot.rt)
        assert await clock.finish_publishing() == 0, "not before its back-off has run out"
        bot.faults_off()  # the method's window has passed
        bot.later(RETRY.backoff(1) + timedelta(seconds=1))
        assert await clock.finish_publishing() == 1
        [card] = bot.top()
        assert "actions" in block_ids(card)
        assert (await bot.state())[0] == "final"
        assert await clock.finish_publishing() == 0


# --- Slack failing on the update --------------------------------------------------------------


@pytest.mark.parametrize("fault", ["http_500", "http_429_persistent"])
async def test_a_failed_update_never_leaves_gathering_evidence_up(checkout: Scenario, make_bot: Any,
                                                                  fault: str) -> None:
    broken = with_faults(checkout, errors={"slack.chat_update": fault}, retry_after_s=0)
    async with make_bot(broken) as bot:  # past the client's own retries, as in production
        with pytest.raises(SlackApiError):
            await bot.publish()
        [card] = bot.top()
        assert block_ids(card)[0] == "placeholder", "Slack refused the update (and no failure card claims otherwise)"
        state, _attempts, error = await bot.state()
        assert state == "posted"
        assert error is not None
        assert await bot.rt.store.get_brief(bot.key) is not None, "the brief itself is kept"

        bot.faults_off()
        bot.later(RETRY.backoff(1) + timedelta(seconds=1))
        assert await Maintenance(bot.rt).finish_publishing() == 1
        [card] = bot.top()
        assert "actions" in block_ids(card)
        assert "Gathering evidence" not in card.text
        assert await bot.state() == ("final", 2, None)
        assert len(await bot.rt.store.list_briefs(bot.key)) == 1, "re-rendered, not drafted again"


async def test_the_clock_gives_up_after_its_bound_of_attempts(checkout: Scenario, make_bot: Any) -> None:
    def abandoned() -> float:
        return metrics.registry.get_sample_value(
            "incident_brief_briefs_total", {"trigger": "pagerduty", "outcome": "abandoned"}) or 0.0

    before = abandoned()
    down = with_faults(checkout, errors={"slack.chat_postMessage": "http_500"})
    async with make_bot(down) as bot:
        await bot.fail_every_attempt()
        state, attempts, error = await bot.state()
        assert (state, attempts) == ("claimed", RETRY.max_attempts)
        assert error is not None
        # The give-up line is one more post, refused like the rest: the audit row and the
        # counter still say it (the report and the digest count them).
        assert len(bot.posts()) == RETRY.max_attempts + 1
        assert await bot.rt.store.unfinished_incidents(now=bot.rt.now() + timedelta(days=1),
                                                       max_attempts=RETRY.max_attempts) == []
        [given_up] = [e for e in await bot.rt.store.list_control_events() if e.kind == BRIEF_ABANDONED]
        assert given_up.subject == bot.key
        assert given_up.data["attempts"] == RETRY.max_attempts
        assert "http_500" in given_up.detail or "500" in given_up.detail
        assert abandoned() == before + 1
        day = timedelta(days=1)
        report = await Reports(bot.rt.store.sessions).trust_report(since=bot.rt.now() - day,
                                                                   until=bot.rt.now() + day)
        assert report.briefs_abandoned == 1
        assert ("briefs given up", "1 (Slack refused every attempt; see `incident-brief audit`)") \
            in report_lines(report)


async def test_a_card_slack_never_lets_the_bot_finish_ends_with_a_line_saying_so(
        checkout: Scenario, make_bot: Any) -> None:
    broken = with_faults(checkout, errors={"slack.chat_update": "http_500"})
    async with make_bot(broken) as bot:
        await bot.fail_every_attempt()
        [card] = bot.top()
        assert block_ids(card)[0] == "placeholder"
        [line] = [m for m in bot.sb.system("slack").messages if m.thread_ts == card.ts]
        assert f"gave up on the brief for {checkout.alert.title}"[:60] in line.text
        assert f"after {RETRY.max_attempts} attempts" in line.text
        assert f"`incident-brief audit {bot.key}`" in line.text
        assert "(last: update: SlackApiError)" in line.text
        assert "http" not in line.text, "the error's message (a URL) stays in the audit row"
        assert "<!" not in line.text


# --- a process killed mid-brief ----------------------------------------------------------------


async def test_a_brief_killed_mid_gather_is_finished_by_the_clock_of_a_restarted_process(
        checkout: Scenario, make_bot: Any, tmp_path: Path) -> None:
    slow = with_faults(checkout, latency_ms={"github": 3000})
    async with make_bot(slow, timed_policy(30.0)) as bot:
        work = asyncio.ensure_future(bot.publish())
        for _ in range(200):  # until the placeholder is up and the reads are out
            incident = await bot.rt.store.get_incident(bot.key)
            if incident is not None and incident.publish_state == "posted":
                break
            await asyncio.sleep(0.02)
        work.cancel()  # the process dies: nothing after this line of its work happens
        with pytest.raises(asyncio.CancelledError):
            await work
        [card] = bot.top()
        assert block_ids(card)[0] == "placeholder"
        assert (await bot.state())[0] == "posted"

        # A restarted process: a new runtime on the same database, its clock.
        bot.faults_off()
        restarted = await build_runtime(bot.rt.settings, policy=default_policy(),
                                        catalog=Catalog(checkout.service_entries()), now=lambda: checkout.now)
        clock = Maintenance(restarted)
        assert await clock.finish_publishing() == 0, "the dead worker's lease is still running"
        restarted.now = lambda: checkout.now + lease(restarted) + timedelta(seconds=1)
        # Two clocks at once (two replicas): one takes the step.
        assert sorted(await asyncio.gather(clock.finish_publishing(), Maintenance(restarted).finish_publishing())) \
            == [0, 1]
        [card] = bot.top()
        assert "actions" in block_ids(card)
        assert len(bot.posts()) == 1, "the same message, finished in place"
        incident = await restarted.store.get_incident(bot.key)
        assert incident is not None
        assert incident.publish_state == "final"
