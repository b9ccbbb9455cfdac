"""The gateway over real HTTP: pydantic-ai's OpenAI and Anthropic models against the sandbox's
model endpoints, each misbehaviour of the scenario model, a 500 and a timeout along the chain,
the spend stop and the offline fallback, and no planted secret on the wire or in the audit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic_ai import models

from bot.core.audit import MemoryAudit
from bot.core.config import LlmSettings
from bot.core.models import Brief
from bot.gateway import Gateway, MemoryGatewayStore
from bot.gateway.drafter import LlmDrafter
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.gateway import rules, scenario_inputs

OPENAI = "openai:gpt-4.1@2025-04-14"
ANTHROPIC = "anthropic:claude-haiku-4-5@20251001"
PLANTED = ("jane.doe@example.com", "sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123")
INJECTED = ("v9.9.9", "<!channel>", "PROD")


@pytest.fixture(autouse=True)
def _allow_sandbox_model_requests() -> Iterator[None]:
    # conftest blocks model requests; these tests reach only the loopback sandbox.
    with models.override_allow_model_requests(True):
        yield


@pytest.fixture
def sandbox(search_injection: Scenario) -> Iterator[Sandbox]:
    with Sandbox(search_injection, systems=["llm"]) as running:
        yield running


class Run:
    def __init__(self, sandbox: Sandbox, **overrides: Any) -> None:
        self.sandbox = sandbox
        self.audit = MemoryAudit()
        self.store = MemoryGatewayStore()
        llm: LlmSettings = sandbox.settings().llm.model_copy(update=overrides.pop("settings", {}))
        self.gateway = Gateway(llm, store=self.store, audit=self.audit, rules=rules(**overrides))
        self.drafter = LlmDrafter(self.gateway, workspace="T1")

    async def draft(self, scenario: Scenario) -> Brief:
        alert, service, window, evidence = scenario_inputs(scenario)
        return await self.drafter.draft(alert, service, window, evidence, [])

    def paths(self) -> list[tuple[str, int]]:
        return [(r.path, r.status) for r in self.sandbox.recorder.requests("llm")]


def _cited_and_known(brief: Brief, scenario: Scenario) -> bool:
    known = {item.id for item in scenario_inputs(scenario)[3]}
    return all(claim.citations and set(claim.citations) <= known for claim in brief.claims())


async def test_a_cited_brief_through_the_openai_compatible_endpoint(sandbox: Sandbox,
                                                                  search_injection: Scenario) -> None:
    run = Run(sandbox)
    brief = await run.draft(search_injection)

    assert run.paths() == [("/v1/chat/completions", 200)]
    assert brief.draft.drafter == "llm"
    assert brief.draft.model == OPENAI
    assert brief.draft.input_tokens > 500
    assert brief.draft.cost_usd > 0
    assert _cited_and_known(brief, search_injection)
    assert brief.likely_causes[0].kind == "dependency"
    [record] = run.audit.model_calls
    assert (record.model, record.outcome, record.input_tokens) == (OPENAI, "ok", brief.draft.input_tokens)


async def test_a_cited_brief_through_the_anthropic_compatible_endpoint(sandbox: Sandbox,
                                                                     search_injection: Scenario) -> None:
    run = Run(sandbox, settings={"routes": {"brief": ANTHROPIC, "ticket": ANTHROPIC}, "fallbacks": []})
    brief = await run.draft(search_injection)

    assert run.paths() == [("/v1/messages", 200)]
    assert brief.draft.model == ANTHROPIC
    assert brief.draft.output_tokens > 0
    assert _cited_and_known(brief, search_injection)


async def test_a_provider_500_falls_back_along_the_chain(sandbox: Sandbox, search_injection: Scenario) -> None:
    sandbox.system("llm").wire_behaviour = {"openai": "http_500"}
    run = Run(sandbox)
    brief = await run.draft(search_injection)

    assert run.paths() == [("/v1/chat/completions", 500), ("/v1/messages", 200)]
    assert brief.draft.model == ANTHROPIC
    assert brief.draft.drafter == "llm"
    assert any(note.startswith(f"model {OPENAI}: http_error") for note in brief.notes)
    assert [r.outcome for r in run.audit.model_calls] == ["http_error", "ok"]


async def test_a_timeout_falls_back_along_the_chain(sandbox: Sandbox, search_injection: Scenario) -> None:
    llm = sandbox.system("llm")
    llm.wire_behaviour, llm.slow_seconds = {"openai": "slow"}, 2.0
    run = Run(sandbox, settings={"timeout_s": 0.3})
    brief = await run.draft(search_injection)

    assert brief.draft.model == ANTHROPIC
    assert [r.outcome for r in run.audit.model_calls] == ["timeout", "ok"]
    assert any("timeout (no answer within 0.3s)" in note for note in brief.notes)


MISBEHAVIOURS = ["invalid_json", "schema_violation", "uncited_claims", "unknown_citation_ids", "obey_injection"]


@pytest.mark.parametrize("behaviour", MISBEHAVIOURS)
@pytest.mark.parametrize("route", [OPENAI, ANTHROPIC])
async def test_each_misbehaviour_is_repaired_once(sandbox: Sandbox, search_injection: Scenario, behaviour: str,
                                                  route: str) -> None:
    sandbox.system("llm").behaviour = behaviour
    run = Run(sandbox, settings={"routes": {"brief": route, "ticket": route}, "fallbacks": []})
    brief = await run.draft(search_injection)

    assert [r.outcome for r in run.audit.model_calls] == ["schema_error", "repaired"]
    assert brief.draft.model == route
    assert _cited_and_known(brief, search_injection)
    text = brief.model_dump_json()
    assert all(planted not in text for planted in INJECTED)
    assert brief.ticket is not None
    assert brief.ticket.project == "DISC"


async def test_a_stubborn_model_exhausts_the_step_cap_and_the_offline_drafter_answers(
        sandbox: Sandbox, search_injection: Scenario) -> None:
    llm = sandbox.system("llm")
    llm.behaviour, llm.stubborn = "unknown_citation_ids", True
    run = Run(sandbox, steps=3)
    brief = await run.draft(search_injection)

    assert len(run.paths()) == 3  # the answer, its repair, then the fallback model's first answer
    assert [r.outcome for r in run.audit.model_calls] == ["schema_error", "schema_error", "schema_error", "step_cap"]
    assert brief.draft.drafter == "offline"
    assert "step cap of 3 model call(s)" in (brief.draft.fallback_reason or "")
    assert any(note.startswith("Drafted without a model (offline drafter)") for note in brief.notes)


async def test_a_spend_limit_stops_every_call_and_the_brief_still_comes(sandbox: Sandbox,
                                                                       search_injection: Scenario) -> None:
    run = Run(sandbox, user_day=0.0001)
    brief = await run.draft(search_injection)

    assert run.paths() == []
    assert brief.draft.drafter == "offline"
    assert "daily model budget for U0ONCALL2 would be passed" in (brief.draft.fallback_reason or "")
    assert any("budget" in note for note in brief.notes)
    assert {r.outcome for r in run.audit.model_calls} == {"budget"}


async def test_refresh_with_unchanged_evidence_is_a_cache_hit(sandbox: Sandbox, search_injection: Scenario) -> None:
    run = Run(sandbox)
    first = await run.draft(search_injection)
    second = await run.draft(search_injection)

    assert len(run.paths()) == 1
    assert (first.draft.cache_hit, second.draft.cache_hit) == (False, True)
    assert second.headline == first.headline


async def test_no_planted_secret_reaches_the_wire_the_audit_or_the_brief(sandbox: Sandbox,
                                                                         search_injection: Scenario) -> None:
    sandbox.system("llm").behaviour = "uncited_claims"
    run = Run(sandbox)
    brief = await run.draft(search_injection)

    wire = " ".join(r.body for r in sandbox.recorder.requests("llm"))
    assert "[REDACTED:email]" in wire  # the evidence was sent, masked
    audit = " ".join(r.model_dump_json() for r in run.audit.model_calls)
    for secret in PLANTED:
        assert secret not in wire
        assert secret not in audit
        assert secret not in brief.model_dump_json()
        assert secret not in str(run.store.cache)


async def test_a_brief_without_a_ticket_gets_one_from_the_ticket_prompt(sandbox: Sandbox,
                                                                      search_injection: Scenario) -> None:
    sandbox.system("llm").behaviour = "omit_ticket"
    run = Run(sandbox)
    brief = await run.draft(search_injection)

    assert run.paths() == [("/v1/chat/completions", 200)] * 2
    assert [(r.task, r.outcome) for r in run.audit.model_calls] == [("brief", "ok"), ("ticket", "ok")]
    ticket_call = run.audit.model_calls[1]
    assert ticket_call.prompt_version.startswith("ticket@")
    asked = sandbox.recorder.requests("llm")[1].body
    assert "Propose one Jira ticket" in asked
    assert brief.likely_causes[0].claim.text in asked  # the brief's top cause, on one line
    assert brief.ticket is not None
    assert brief.ticket.project == "DISC"
    known = {item.id for item in scenario_inputs(search_injection)[3]}
    assert brief.ticket.citations
    assert set(brief.ticket.citations) <= known
    assert all(planted not in brief.ticket.model_dump_json() for planted in INJECTED)
    # The brief's accounting covers both calls.
    assert brief.draft.input_tokens == sum(r.input_tokens for r in run.audit.model_calls)
    assert brief.draft.cost_usd == pytest.approx(sum(r.cost_usd for r in run.audit.model_calls), abs=1e-6)
