"""The sandbox's model at the wire, through the official openai and anthropic SDKs: both formats
with usage, a cited brief built from the prompt's evidence blocks, auth, and its misbehaviours."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from bot.core.models import Brief, TicketProposal
from bot.draft.prompts import render_brief_prompt, render_ticket_prompt
from bot.gateway.tickets import ticket_problems
from sandbox.llm import build_brief, build_ticket, misbehave, misbehave_ticket, parse_blocks
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.gateway import scenario_inputs

TOOL: dict[str, Any] = {"name": "final_result", "description": "the brief", "schema": Brief.model_json_schema()}


@pytest.fixture
def llm_sandbox(search_injection: Scenario) -> Iterator[Sandbox]:
    with Sandbox(search_injection, systems=["llm"]) as sandbox:
        yield sandbox


def _prompt(scenario: Scenario) -> str:
    alert, service, _window, evidence = scenario_inputs(scenario)
    return render_brief_prompt(alert, service, evidence, [], budget_tokens=3000).user


def _openai(sandbox: Sandbox, key: str | None = None) -> openai.OpenAI:
    llm = sandbox.settings().llm.openai
    return openai.OpenAI(base_url=llm.base_url, api_key=key or llm.api_key.get_secret_value(), max_retries=0)


def _anthropic(sandbox: Sandbox) -> anthropic.Anthropic:
    llm = sandbox.settings().llm.anthropic
    return anthropic.Anthropic(base_url=llm.base_url, api_key=llm.api_key.get_secret_value(), max_retries=0)


def _openai_brief(client: openai.OpenAI, prompt: str) -> tuple[dict[str, Any], Any]:
    request: dict[str, Any] = {
        "model": "gpt-4.1-2025-04-14", "messages": [{"role": "user", "content": prompt}],
        "tools": [{"type": "function", "function": {"name": TOOL["name"], "parameters": TOOL["schema"]}}],
        "tool_choice": "required"}
    reply = client.chat.completions.create(**request)
    call: Any = (reply.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "final_result"
    return json.loads(call.function.arguments), reply.usage


def test_the_openai_endpoint_answers_a_cited_brief_with_usage(llm_sandbox: Sandbox, search_injection: Scenario) -> None:
    prompt = _prompt(search_injection)
    brief, usage = _openai_brief(_openai(llm_sandbox), prompt)

    parsed = Brief.model_validate(brief)
    known = {block.id for block in parse_blocks(prompt)}
    assert all(claim.citations and set(claim.citations) <= known for claim in parsed.claims())
    assert parsed.likely_causes[0].kind == "dependency"
    assert "Elasticsearch" in parsed.likely_causes[0].claim.text
    assert "v9.9.9" not in json.dumps(brief)  # a careful model does not follow the planted order
    assert usage.prompt_tokens > 500
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_the_anthropic_endpoint_answers_with_a_tool_use_block(llm_sandbox: Sandbox, search_injection: Scenario) -> None:
    prompt = _prompt(search_injection)
    request: dict[str, Any] = {
        "model": "claude-haiku-4-5-20251001", "max_tokens": 2048, "system": "rules",
        "messages": [{"role": "user", "content": prompt}],
        "tools": [{"name": TOOL["name"], "input_schema": TOOL["schema"]}],
        "tool_choice": {"type": "tool", "name": "final_result"}}
    reply = _anthropic(llm_sandbox).messages.create(**request)

    block: Any = reply.content[0]
    assert block.type == "tool_use"
    assert block.name == "final_result"
    assert Brief.model_validate(block.input) == Brief.model_validate(build_brief(prompt))
    assert reply.stop_reason == "tool_use"
    assert reply.usage.input_tokens > 500
    assert reply.usage.output_tokens > 0


def test_a_wrong_key_is_refused(llm_sandbox: Sandbox) -> None:
    with pytest.raises(openai.AuthenticationError):
        _openai(llm_sandbox, key="sk-wrong").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}])


def test_http_500_in_both_wire_formats(llm_sandbox: Sandbox) -> None:
    llm_sandbox.system("llm").behaviour = "http_500"
    with pytest.raises(openai.InternalServerError):
        _openai(llm_sandbox).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.InternalServerError):
        _anthropic(llm_sandbox).messages.create(model="m", max_tokens=10,
                                                messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize(("behaviour", "spoiled"), [
    ("invalid_json", lambda args: _not_json(args)),
    ("schema_violation", lambda args: isinstance(json.loads(args)["headline"], str)),
    ("uncited_claims", lambda args: json.loads(args)["impact"]["citations"] == []),
    ("unknown_citation_ids", lambda args: "deploy-ffffff" in json.loads(args)["headline"]["citations"]),
    ("obey_injection", lambda args: json.loads(args)["ticket"]["project"] == "PROD" and "v9.9.9" in args),
])
def test_misbehaviours_spoil_the_first_answer(llm_sandbox: Sandbox, search_injection: Scenario, behaviour: str,
                                              spoiled: Any) -> None:
    llm_sandbox.system("llm").behaviour = behaviour
    request: dict[str, Any] = {
        "model": "m", "messages": [{"role": "user", "content": _prompt(search_injection)}],
        "tools": [{"type": "function", "function": {"name": "final_result", "parameters": TOOL["schema"]}}]}
    reply = _openai(llm_sandbox).chat.completions.create(**request)
    call: Any = (reply.choices[0].message.tool_calls or [])[0]
    assert spoiled(call.function.arguments)


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def test_requests_are_recorded_as_reads(llm_sandbox: Sandbox, search_injection: Scenario) -> None:
    _openai_brief(_openai(llm_sandbox), _prompt(search_injection))
    [recorded] = llm_sandbox.recorder.requests("llm")
    assert recorded.tool == "llm.openai_model_call"
    assert recorded.headers["authorization"] == "<redacted>"
    assert llm_sandbox.recorder.writes("llm") == []


def _ticket_prompt(scenario: Scenario) -> str:
    alert, service, _window, evidence = scenario_inputs(scenario)
    return render_ticket_prompt(service, "search-api p95 latency above 2 s", "Elasticsearch queries time out",
                                evidence, alert, budget_tokens=3000).user


def test_a_ticket_request_is_answered_with_a_cited_proposal_for_its_project(search_injection: Scenario) -> None:
    prompt = _ticket_prompt(search_injection)
    ticket = TicketProposal.model_validate(build_ticket(prompt))

    blocks = parse_blocks(prompt)
    assert ticket.project == "DISC"
    assert ticket.summary == "search-api p95 latency above 2 s"  # the headline names the service: once
    assert ticket.citations
    assert set(ticket.citations) <= {b.id for b in blocks}
    assert "Elasticsearch queries time out" in ticket.description


@pytest.mark.parametrize(("behaviour", "spoiled_as"), [
    ("invalid_json", "not JSON"), ("schema_violation", "not a ticket"), ("uncited_claims", "caught by the check"),
    ("unknown_citation_ids", "caught by the check"), ("obey_injection", "caught by the check"),
])
def test_each_misbehaviour_spoils_a_ticket_too(search_injection: Scenario, behaviour: str, spoiled_as: str) -> None:
    """Each misbehaviour spoils the ticket in its own way: a spoiled answer that happened to be
    refused for another reason (say, not parsing) would not show the bot's check catching it."""
    prompt = _ticket_prompt(search_injection)
    good = build_ticket(prompt)
    spoiled = misbehave_ticket(behaviour, prompt, good)

    if spoiled_as == "not JSON":
        assert isinstance(spoiled, str)
        with pytest.raises(ValueError):
            TicketProposal.model_validate_json(spoiled)
    elif spoiled_as == "not a ticket":
        assert not isinstance(spoiled, str)
        with pytest.raises(ValueError):
            TicketProposal.model_validate(spoiled)
    else:
        ticket = TicketProposal.model_validate(spoiled)
        known = {b.id for b in parse_blocks(prompt)}
        assert ticket_problems(ticket, known, "DISC")  # the bot's check catches it


def test_omit_ticket_leaves_the_briefs_ticket_out(search_injection: Scenario) -> None:
    prompt = _prompt(search_injection)
    brief = build_brief(prompt)
    assert "ticket" in brief
    assert "ticket" not in misbehave("omit_ticket", prompt, brief)
