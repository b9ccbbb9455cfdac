"""The runtime `serve` and `clock` build: which drafter it gets, said once, and who pays.

The model is the sandbox's SIMULATED one: these tests check the wiring, not a model's brief.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic_ai import models

from bot.app.bootstrap import build_runtime
from bot.core.config import Settings
from bot.core.keys import incident_key
from bot.draft.drafter import OfflineDrafter
from bot.gateway.drafter import LlmDrafter
from bot.slack.publish import publish_brief, refresh_brief
from sandbox.harness import scenario_service
from sandbox.scenario import Scenario
from tests.helpers.slack_app import sandboxed_runtime


@pytest.fixture(autouse=True)
def _allow_sandbox_model_requests() -> Iterator[None]:
    # conftest blocks model requests; these reach only the loopback sandbox's model.
    with models.override_allow_model_requests(True):
        yield


async def test_with_a_provider_the_runtime_drafts_through_one_gateway_on_the_store(
        checkout: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="incident_brief.bootstrap")
    async with sandboxed_runtime(checkout, tmp_path / "bot.db", model=True) as (_, rt):
        first, second = rt.drafter(), rt.drafter()
    assert isinstance(first, LlmDrafter)
    assert first is second, "one drafter (one gateway, its agents and clients) per process"
    assert first.gateway.store is rt.store, "spend and cache in the configured store"
    assert first.gateway.rules.limits == rt.policy.spend_limits
    said = [r.getMessage() for r in caplog.records if r.name == "incident_brief.bootstrap"]
    assert len(said) == 1
    assert said[0].startswith("briefs are drafted by openai:gpt-4.1@2025-04-14 at http://127.0.0.1:")


@pytest.mark.parametrize(("llm", "why"), [
    ({}, "no model provider is configured (set IB_LLM__OPENAI__API_KEY"),
    ({"enabled": False, "openai": {"api_key": "sk-x"}}, "the model is switched off (IB_LLM__ENABLED=false)"),
])
async def test_without_a_usable_provider_the_runtime_drafts_offline_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, llm: dict[str, object], why: str) -> None:
    caplog.set_level(logging.INFO, logger="incident_brief.bootstrap")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", llm=llm)
    rt = await build_runtime(settings)
    assert rt.drafter is OfflineDrafter
    [said] = [r.getMessage() for r in caplog.records if r.name == "incident_brief.bootstrap"]
    assert said.startswith("briefs are drafted offline: ")
    assert why in said


async def test_the_person_who_asks_and_their_team_pay_a_scheduled_refresh_charges_no_person(
        checkout: Scenario, tmp_path: Path) -> None:
    async with sandboxed_runtime(checkout, tmp_path / "bot.db", model=True) as (_, rt):
        service = scenario_service(checkout)
        alert = checkout.alert.to_alert().model_copy(update={"requested_by": "U0ONCALL1", "workspace": "T0TEAM",
                                                             "incident_id": None})
        channel = service.slack_channel or "C0INCIDENT"
        key = incident_key(alert, channel=channel)
        await publish_brief(rt, alert, service, channel, key=key)
        asked = await rt.store.list_model_calls(key)
        await refresh_brief(rt, key, None)  # what the clock does for an open incident
        scheduled = (await rt.store.list_model_calls(key))[len(asked):]
        today = datetime.now(UTC).date()
        person, team = await rt.store.spend_today("U0ONCALL1", today), await rt.store.spend_month("T0TEAM", today)
        default = await rt.store.spend_month(rt.settings.llm.workspace, today)
    assert asked
    assert {call.actor for call in asked} == {"U0ONCALL1"}
    assert person.usd > 0
    assert (team.usd, team.tokens) == (person.usd, person.tokens), "the Slack team the request came from"
    assert default.usd == 0, "not the default workspace: the request carried its team"
    assert scheduled, "the refresh went through the gateway (a cache hit is a call too)"
    assert {call.actor for call in scheduled} == {None}
