"""The product as it runs: `incident-brief serve`, a separate process started as the Procfile
starts it, configured by an env file (what `incident-brief sandbox up` writes), against the
sandbox's wire-level fakes of Slack, PagerDuty, the vendors and an OpenAI-compatible model
server. The model is SIMULATED (the sandbox's): these tests prove the plumbing (gateway, ledger,
audit, fallback, logs), never the quality of a model's brief.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.core.policy import REPO_ROOT
from bot.store.db import create_engine_for, session_factory
from bot.store.repo import Store
from sandbox import slack_sender
from sandbox.people import approve_ticket, wait_for
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from sandbox.slack import TEAM_ID
from sandbox.standalone import at_now, fire, prepare
from tests.helpers.serve_process import ServeProcess, serve_process

SEED_POLICY = REPO_ROOT / "config" / "policy.seed.yaml"
BRIEF_WAIT_S = 90.0  # gather and draft in another process, on a busy machine


@dataclass
class Live:
    sb: Sandbox
    bot: ServeProcess

    def briefs(self) -> list[Any]:
        """The posted briefs (messages with their buttons), in posting order."""
        return [m for m in self.sb.system("slack").messages if any(b.get("type") == "actions" for b in m.blocks)]


@pytest.fixture
async def open_store(db_url: str) -> AsyncIterator[Store]:
    engine = create_engine_for(db_url)
    try:
        yield Store(session_factory(engine))
    finally:
        await engine.dispose()


def _card(message: Any) -> str:
    return json.dumps(message.blocks)


async def _brief(live: Live, count: int) -> Any:
    found = await wait_for(lambda: live.briefs()[count - 1] if len(live.briefs()) >= count else None,
                           f"brief #{count} in Slack", timeout=BRIEF_WAIT_S)
    # The placeholder is replaced in place once the brief is drafted: wait for the drafted card.
    return await wait_for(lambda: found if "drafter" in _card(found) else None, "the drafted card",
                          timeout=BRIEF_WAIT_S)


async def _mention(live: Live, channel: str, text: str) -> None:
    body = slack_sender.app_mention_body(channel=channel, user="U0ONCALL1", text=text)
    secret = live.sb.ctx.secrets["slack_signing_secret"]
    answer = await slack_sender.post_to_bot(f"{live.bot.url}/slack/events", body,
                                            slack_sender.signed_headers(secret, body))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(("db_url", "log_format", "policy"), [
    ("sqlite", "text", None),
    pytest.param("postgres", "json", SEED_POLICY, marks=pytest.mark.postgres),
], indirect=["db_url"], ids=["sqlite-text-bundled-policy", "postgres-json-seed-policy"])
async def test_serve_drafts_with_the_model_records_spend_and_logs_cleanly(
        checkout: Scenario, tmp_path: Path, db_url: str, open_store: Store, log_format: str,
        policy: Path | None) -> None:
    scenario = at_now(checkout)
    with Sandbox(scenario) as sb:
        env_file = prepare(sb, tmp_path / "sandbox", database_url=db_url)
        # The environment wins over the env file: JSON logs, maybe the seed's policy, and a default
        # workspace that differs from the Slack team, so the test tells the two apart.
        overrides = {"IB_LOG_FORMAT": log_format, "IB_LLM__WORKSPACE": "T0DEFAULT",
                     **({"IB_POLICY_FILE": str(policy)} if policy else {})}
        with serve_process(env_file, tmp_path / "serve.log", env=overrides) as bot:
            live = Live(sb, bot)
            # 1. PagerDuty fires a signed webhook: a brief drafted with the model.
            answer = await fire(scenario, bot.url)
            assert answer.status_code == 202, answer.text
            paged = await _brief(live, 1)
            assert "drafter llm" in _card(paged)
            assert "openai:gpt-4.1@2025-04-14" in _card(paged)
            # 2. Someone asks in the channel: a second brief, paid for by that person.
            await _mention(live, paged.channel, "<@UBRIEFBOT> brief checkout-api")
            asked = await _brief(live, 2)
            assert "drafter llm" in _card(asked)
            # 3. An approver files the ticket the brief proposes.
            await approve_ticket(sb, bot.url, paged, "U0ONCALL1")
            created = await wait_for(lambda: list(sb.system("jira").created) or None, "the Jira ticket",
                                     timeout=BRIEF_WAIT_S)
            await wait_for(lambda: "filed" in _card(paged) or None, "the ticket on the card", timeout=BRIEF_WAIT_S)
        model_requests = len(sb.recorder.requests("llm"))

    assert created[0]["key"].startswith("CHK-")
    key = f"pd:{scenario.alert.incident_id}"
    paged_brief = await open_store.get_brief(key)
    assert paged_brief is not None
    assert paged_brief.result.brief.draft.drafter == "llm"
    model_calls = await open_store.list_model_calls(key)
    assert model_calls, "the model call is audited under the incident's key"
    assert {call.outcome for call in model_calls} <= {"ok", "repaired"}
    assert await open_store.list_tool_calls(key), "next to the incident's tool calls"
    assert all(call.actor is None for call in model_calls), "a PagerDuty trigger has no Slack user"

    # The ledger: a mention is charged to the person and their Slack team, a PagerDuty trigger
    # (nobody asked) to the configured default workspace.
    today = datetime.now(UTC).date()
    team = await open_store.spend_month(TEAM_ID, today)
    person = await open_store.spend_today("U0ONCALL1", today)
    default = await open_store.spend_month("T0DEFAULT", today)
    assert person.tokens > 0
    assert (team.usd, team.tokens) == (person.usd, person.tokens), "the person's Slack team pays for the mention"
    assert default.usd > 0, "the PagerDuty brief's model calls are charged to the default workspace"
    assert model_requests >= 2, "each brief reached the (simulated) model"

    logs = bot.stderr()
    assert "Traceback" not in logs
    assert "Logging error" not in logs
    assert "briefs are drafted by openai:gpt-4.1@2025-04-14" in logs, "said once at start-up"
    if log_format == "text":
        assert re.search(r'uvicorn\.access: 127\.0\.0\.1:\d+ - "POST /webhooks/pagerduty HTTP/1\.1" 202', logs)
        assert "[REDACTED:ipv4]" not in logs, "loopback addresses are not PII"
    else:
        lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
        assert all({"event", "level", "logger", "time"} <= set(line) for line in lines)
        access = [line for line in lines if line["logger"] == "uvicorn.access"]
        assert {(line["method"], line["path"], line["status"]) for line in access} >= {
            ("POST", "/webhooks/pagerduty", 202), ("POST", "/slack/events", 200)}


async def test_a_failing_model_endpoint_still_posts_the_brief_drafted_offline_with_a_note(
        checkout: Scenario, tmp_path: Path) -> None:
    scenario = at_now(checkout)
    database = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    with Sandbox(scenario) as sb:
        sb.system("llm").behaviour = "http_500"  # every model of the chain fails
        env_file = prepare(sb, tmp_path / "sandbox", database_url=database)
        with serve_process(env_file, tmp_path / "serve.log") as bot:
            assert (await fire(scenario, bot.url)).status_code == 202
            posted = await _brief(Live(sb, bot), 1)
        failed_requests = sb.recorder.requests("llm")

    card = _card(posted)
    assert "drafter offline" in card
    assert "fell back: every model in the chain failed" in card
    assert "Drafted without a model (offline drafter)" in card, "the brief says why, visibly"
    assert failed_requests, "the model endpoint was tried"
    engine = create_engine_for(database)
    try:
        store = Store(session_factory(engine))
        key = f"pd:{scenario.alert.incident_id}"
        stored = await store.get_brief(key)
        calls = await store.list_model_calls(key)
        spent = await store.spend_month(TEAM_ID, datetime.now(UTC).date())
    finally:
        await engine.dispose()
    assert stored is not None
    assert stored.result.brief.draft.fallback_reason
    assert stored.result.brief.likely_causes, "the offline brief is a whole brief"
    assert {call.outcome for call in calls} == {"http_error"}, "each failed request is audited"
    assert spent.usd == 0, "nothing is charged for requests that failed"
    assert "Traceback" not in bot.stderr()
