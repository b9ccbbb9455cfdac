"""The gateway's rules against pydantic-ai FunctionModels: typed output, repair, fallback along
the chain, step cap, spend hard stop, exact cache, redaction, audit and pinned config."""

from __future__ import annotations

import pytest

from bot.core.audit import MemoryAudit
from bot.core.config import LlmSettings
from bot.core.keys import incident_key
from bot.core.models import Brief, ServiceEntry, TicketProposal
from bot.draft.offline import ticket_summary
from bot.draft.prompts import RenderedPrompt, render_brief_prompt
from bot.gateway import Caller, GatewayConfigError, MemoryGatewayStore, ModelRef, ModelRefError, StepCounter
from bot.gateway.drafter import LlmDrafter, brief_problems
from bot.gateway.pricing import cost_usd
from bot.gateway.tickets import ticket_problems
from sandbox.scenario import Scenario
from tests.helpers.gateway import (
    PRICES,
    PRIMARY,
    SECONDARY,
    Scripted,
    gateway,
    good_brief,
    rules,
    scenario_inputs,
)

PLANTED = ("jane.doe@example.com", "sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123")
BAD_SHAPE = {"headline": "not a claim", "likely_causes": [{"kind": "gremlins"}]}
CALLER = Caller(brief_key="request:test", user="U0ONCALL2", workspace="T1")


def prompt_for(scenario: Scenario) -> RenderedPrompt:
    alert, service, _window, evidence = scenario_inputs(scenario)
    return render_brief_prompt(alert, service, evidence, [], budget_tokens=3000)


async def test_answer_is_a_typed_brief_recording_model_prompt_tokens_and_cost(search_injection: Scenario) -> None:
    alert, service, window, evidence = scenario_inputs(search_injection)
    prompt = render_brief_prompt(alert, service, evidence, [], budget_tokens=3000)
    primary = Scripted([good_brief(list(prompt.packed.included), service.jira_project)])
    audit = MemoryAudit()
    drafter = LlmDrafter(gateway(primary, audit=audit), workspace="T1")

    brief = await drafter.draft(alert, service, window, evidence, [])

    info = brief.draft
    assert (info.drafter, info.model, info.prompt_version) == ("llm", PRIMARY, prompt.version)
    assert (info.prompt_version or "").startswith("brief@")
    assert info.input_tokens > 0
    assert info.output_tokens > 0
    assert info.cost_usd == pytest.approx(cost_usd(PRICES[PRIMARY], info.input_tokens, info.output_tokens), abs=1e-6)
    assert brief.headline.citations == [prompt.packed.included[0]]
    [record] = audit.model_calls
    assert (record.task, record.model, record.outcome) == ("brief", PRIMARY, "ok")
    assert record.prompt_version == prompt.version
    assert (record.input_tokens, record.output_tokens) == (info.input_tokens, info.output_tokens)
    assert record.brief_key == incident_key(alert)  # without a key from the flow: the alert's own
    assert record.actor == "U0ONCALL2"


async def test_a_malformed_answer_gets_one_repair(search_injection: Scenario) -> None:
    prompt = prompt_for(search_injection)
    primary = Scripted(['{"headline": {"text": "trunc', good_brief(list(prompt.packed.included))])
    audit = MemoryAudit()

    result = await gateway(primary, audit=audit).run("brief", prompt, Brief, caller=CALLER)

    assert result.output is not None
    assert result.model == PRIMARY
    assert [a.outcome for a in result.attempts] == ["repaired"]
    assert [r.outcome for r in audit.model_calls] == ["schema_error", "repaired"]
    assert len(primary.seen) == 2


async def test_a_second_schema_failure_moves_to_the_next_model(search_injection: Scenario) -> None:
    prompt = prompt_for(search_injection)
    primary = Scripted([BAD_SHAPE])
    secondary = Scripted([good_brief(list(prompt.packed.included))])

    result = await gateway(primary, secondary).run("brief", prompt, Brief, caller=CALLER)

    assert result.output is not None
    assert result.model == SECONDARY
    assert [(a.model, a.outcome) for a in result.attempts] == [(PRIMARY, "schema_error"), (SECONDARY, "ok")]
    assert len(primary.seen) == 2  # the answer and its one repair
    assert any("schema_error" in note for note in result.notes())


async def test_unknown_ids_uncited_claims_and_a_foreign_ticket_are_sent_back(search_injection: Scenario) -> None:
    alert, service, window, evidence = scenario_inputs(search_injection)
    prompt = render_brief_prompt(alert, service, evidence, [], budget_tokens=3000)
    ids = list(prompt.packed.included)
    bad = good_brief(ids, "PROD")
    bad["headline"]["citations"] = ["deploy-ffffff"]
    bad["impact"]["citations"] = []
    primary = Scripted([bad, good_brief(ids, service.jira_project)])
    drafter = LlmDrafter(gateway(primary), workspace="T1")

    brief = await drafter.draft(alert, service, window, evidence, [])

    retry = primary.sent_text()
    assert "headline: cites unknown evidence deploy-ffffff" in retry
    assert "impact: no valid citation" in retry
    assert "the ticket must be for project DISC" in retry
    assert brief.ticket is not None
    assert brief.ticket.project == "DISC"
    assert brief.headline.citations == ids[:1]


def test_brief_problems_catches_a_deploy_cause_resting_on_a_log_line(search_injection: Scenario) -> None:
    _alert, _service, _window, evidence = scenario_inputs(search_injection)
    kinds = {item.id: item.kind for item in evidence}
    injected = next(item.id for item in evidence if "v9.9.9" in item.title)
    brief = Brief.model_validate({
        "headline": {"text": "x", "citations": [injected]}, "impact": {"text": "y", "citations": [injected]},
        "likely_causes": [{"kind": "deploy", "confidence": "high",
                           "claim": {"text": "The cause is deploy v9.9.9", "citations": [injected]}}]})
    problems = brief_problems(brief, kinds, "DISC")
    assert problems == [f"a deploy cause must cite a deploy or change event, not only ['{injected}']"]


async def test_the_chain_exhausted_returns_no_output_and_says_why(search_injection: Scenario) -> None:
    prompt = prompt_for(search_injection)
    primary = Scripted([RuntimeError("HTTP 500 from provider")])
    secondary = Scripted([BAD_SHAPE])

    result = await gateway(primary, secondary, gateway_rules=rules(steps=5)).run(
        "brief", prompt, Brief, caller=CALLER)

    assert result.output is None
    assert [a.outcome for a in result.attempts] == ["http_error", "schema_error"]
    assert result.fallback_reason == (f"every model in the chain failed: {PRIMARY} (http_error), "
                                      f"{SECONDARY} (schema_error)")


async def test_the_step_cap_stops_calls_across_the_chain(search_injection: Scenario) -> None:
    prompt = prompt_for(search_injection)
    primary = Scripted([BAD_SHAPE])
    secondary = Scripted([good_brief(list(prompt.packed.included))])
    audit = MemoryAudit()

    result = await gateway(primary, secondary, gateway_rules=rules(steps=2), audit=audit).run(
        "brief", prompt, Brief, caller=CALLER, steps=StepCounter(2))

    assert result.output is None
    assert len(primary.seen) == 2
    assert secondary.seen == []
    assert [a.outcome for a in result.attempts] == ["schema_error", "step_cap"]
    assert "step cap of 2 model call(s)" in (result.fallback_reason or "")
    assert [r.outcome for r in audit.model_calls] == ["schema_error", "schema_error", "step_cap"]


@pytest.mark.parametrize("scope", ["user", "workspace"])
async def test_a_call_that_would_pass_a_spend_limit_is_not_made(search_injection: Scenario, scope: str) -> None:
    prompt = prompt_for(search_injection)
    store = MemoryGatewayStore()
    await store.add_spend(user="U0ONCALL2", workspace="T1", usd=1.999 if scope == "user" else 0.0, tokens=1)
    await store.add_spend(user=None, workspace="T1", usd=0.0 if scope == "user" else 499.999, tokens=1)
    primary, secondary = Scripted([good_brief(list(prompt.packed.included))]), Scripted([BAD_SHAPE])
    audit = MemoryAudit()

    result = await gateway(primary, secondary, store=store, audit=audit).run("brief", prompt, Brief, caller=CALLER)

    assert primary.seen == []
    assert secondary.seen == []
    assert result.output is None
    assert [a.outcome for a in result.attempts] == ["budget", "budget"]
    expected = "daily model budget for U0ONCALL2" if scope == "user" else "workspace's monthly model budget"
    assert expected in (result.fallback_reason or "")
    assert {r.outcome for r in audit.model_calls} == {"budget"}


async def test_spend_is_charged_per_user_and_workspace_from_usage(search_injection: Scenario) -> None:
    prompt = prompt_for(search_injection)
    store = MemoryGatewayStore()
    primary = Scripted(['{"bad', good_brief(list(prompt.packed.included))])

    result = await gateway(primary, store=store).run("brief", prompt, Brief, caller=CALLER)

    today = store.clock().date()
    assert result.cost_usd > 0
    assert (await store.spend_today("U0ONCALL2", today)).usd == pytest.approx(result.cost_usd)
    assert (await store.spend_month("T1", today)).tokens == result.input_tokens + result.output_tokens


async def test_a_second_identical_request_is_a_cache_hit(search_injection: Scenario) -> None:
    prompt = prompt_for(search_injection)
    primary = Scripted([good_brief(list(prompt.packed.included))])
    audit = MemoryAudit()
    gw = gateway(primary, audit=audit)

    first = await gw.run("brief", prompt, Brief, caller=CALLER)
    second = await gw.run("brief", prompt, Brief, caller=CALLER)

    assert len(primary.seen) == 1
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.output == first.output
    assert second.cost_usd == 0
    assert [(r.outcome, r.cache_hit) for r in audit.model_calls] == [("ok", False), ("cache_hit", True)]


async def test_changed_evidence_misses_the_cache(search_injection: Scenario) -> None:
    alert, service, _window, evidence = scenario_inputs(search_injection)
    first = render_brief_prompt(alert, service, evidence, [], budget_tokens=3000)
    second = render_brief_prompt(alert, service, evidence[1:], [], budget_tokens=3000)
    primary = Scripted([good_brief(list(second.packed.included))])
    gw = gateway(primary)

    await gw.run("brief", first, Brief, caller=CALLER)
    result = await gw.run("brief", second, Brief, caller=CALLER)

    assert len(primary.seen) == 2
    assert not result.cache_hit


@pytest.mark.parametrize("redact", [True, False])
async def test_planted_secrets_are_masked_before_the_model_and_the_audit(search_injection: Scenario,
                                                                          redact: bool) -> None:
    prompt = prompt_for(search_injection)
    echo = good_brief(list(prompt.packed.included))
    echo["impact"]["text"] = f"user {PLANTED[0]} saw it"  # a model echoing what it was sent
    primary = Scripted([RuntimeError(f"upstream rejected key {PLANTED[1]}"), echo])
    secondary = Scripted([echo])
    audit = MemoryAudit()

    result = await gateway(primary, secondary, gateway_rules=rules(redact=redact), audit=audit).run(
        "brief", prompt, Brief, caller=CALLER)

    sent = primary.sent_text()
    assert all((secret in sent) is not redact for secret in PLANTED)
    logged = " ".join(r.model_dump_json() for r in audit.model_calls)
    assert all(secret not in logged for secret in PLANTED)
    assert result.output is not None
    assert PLANTED[0] not in result.output.model_dump_json()


def test_models_must_be_pinned_and_priced() -> None:
    assert str(ModelRef.parse("anthropic:claude-haiku-4-5@20251001")) == "anthropic:claude-haiku-4-5@20251001"
    assert ModelRef.parse("openai:gpt-4.1@2025-04-14").wire_name() == "gpt-4.1-2025-04-14"
    assert ModelRef.parse("openai:llama3.1@8b").wire_name({"openai:llama3.1@8b": "llama3.1:8b"}) == "llama3.1:8b"
    with pytest.raises(ModelRefError, match="not pinned"):
        ModelRef.parse("openai:gpt-4.1")
    with pytest.raises(GatewayConfigError, match="not pinned"):
        gateway(Scripted([]), fallbacks=["gpt-4o"])
    with pytest.raises(GatewayConfigError, match=r"no entry in llm\.prices"):
        gateway(Scripted([]), fallbacks=["openai:unpriced@1"])


def _ticket(ids: list[str], project: str = "DISC") -> dict[str, object]:
    return {"project": project, "summary": "search-api: Elasticsearch timeouts", "description": "ES queries time out",
            "priority": "High", "citations": ids[:1]}


async def test_a_brief_without_a_ticket_gets_one_from_the_ticket_task(search_injection: Scenario) -> None:
    alert, service, window, evidence = scenario_inputs(search_injection)
    ids = list(prompt_for(search_injection).packed.included)
    primary = Scripted([good_brief(ids), _ticket(ids, "PROD"), _ticket(ids)])
    audit = MemoryAudit()
    drafter = LlmDrafter(gateway(primary, audit=audit, gateway_rules=rules(steps=4)), workspace="T1")

    brief = await drafter.draft(alert, service, window, evidence, [])

    assert brief.ticket == TicketProposal.model_validate(_ticket(ids))
    assert [(r.task, r.outcome) for r in audit.model_calls] == [
        ("brief", "ok"), ("ticket", "schema_error"), ("ticket", "repaired")]
    assert "the ticket must be for project DISC, not 'PROD'" in primary.sent_text()
    assert any(note.startswith(f"ticket model {PRIMARY}: repaired") for note in brief.notes)
    assert brief.draft.input_tokens == sum(r.input_tokens for r in audit.model_calls)


async def test_a_failed_ticket_task_proposes_the_ticket_from_the_brief(search_injection: Scenario) -> None:
    alert, service, window, evidence = scenario_inputs(search_injection)
    ids = list(prompt_for(search_injection).packed.included)
    primary = Scripted([good_brief(ids), RuntimeError("HTTP 500 from provider")])

    brief = await LlmDrafter(gateway(primary), workspace="T1").draft(alert, service, window, evidence, [])

    assert brief.draft.drafter == "llm"  # the brief itself is the model's
    assert brief.ticket is not None
    assert brief.ticket.project == "DISC"
    # The headline already names the service first: it is not named twice.
    assert brief.headline.text.startswith("search-api ")
    assert brief.ticket.summary == brief.headline.text
    assert brief.ticket.citations == ids[:1]
    assert brief.likely_causes[0].claim.text in brief.ticket.description
    assert any(note.startswith("Ticket proposed from the brief without a model: every model in the chain failed")
               for note in brief.notes)


@pytest.mark.parametrize(("text", "summary"), [
    ("search-api: p95 above 2 s", "search-api: p95 above 2 s"),
    ("Search-API latency up", "Search-API latency up"),
    ("p95 above 2 s", "search-api: p95 above 2 s"),
    ("search-api-v2 latency up", "search-api: search-api-v2 latency up"),  # another service's name
])
def test_a_ticket_summary_names_the_service_once(text: str, summary: str) -> None:
    assert ticket_summary(ServiceEntry(name="search-api"), text) == summary


async def test_the_ticket_task_shares_the_briefs_step_cap(search_injection: Scenario) -> None:
    alert, service, window, evidence = scenario_inputs(search_injection)
    ids = list(prompt_for(search_injection).packed.included)
    primary = Scripted([good_brief(ids), _ticket(ids)])
    audit = MemoryAudit()

    brief = await LlmDrafter(gateway(primary, audit=audit, gateway_rules=rules(steps=1)),
                             workspace="T1").draft(alert, service, window, evidence, [])

    assert len(primary.seen) == 1  # the brief took the only step
    assert [(r.task, r.outcome) for r in audit.model_calls] == [("brief", "ok"), ("ticket", "step_cap")]
    assert brief.ticket is not None  # built from the brief instead
    assert any("step cap of 1 model call(s)" in note for note in brief.notes)


async def test_no_ticket_task_without_a_cause_to_act_on(search_injection: Scenario) -> None:
    alert, service, window, evidence = scenario_inputs(search_injection)
    ids = list(prompt_for(search_injection).packed.included)
    answer = good_brief(ids)
    answer["likely_causes"] = [{"kind": "unknown", "confidence": "low",
                                "claim": {"text": "Not established", "citations": ids[:1]}}]
    primary = Scripted([answer])

    brief = await LlmDrafter(gateway(primary), workspace="T1").draft(alert, service, window, evidence, [])

    assert len(primary.seen) == 1
    assert brief.ticket is None


def test_ticket_problems_name_project_citations_and_summary() -> None:
    ticket = TicketProposal(project="PROD", summary=" ", description="d", citations=["log-pattern-000000"])
    assert ticket_problems(ticket, {"log-pattern-abc123"}, "DISC") == [
        "the ticket must be for project DISC, not 'PROD'",
        "the ticket must cite known evidence ids only",
        "the ticket needs a one-line summary",
    ]


def test_every_model_task_needs_a_route() -> None:
    with pytest.raises(ValueError, match=r"llm\.routes has no model for task\(s\) ticket"):
        LlmSettings(routes={"brief": PRIMARY})
