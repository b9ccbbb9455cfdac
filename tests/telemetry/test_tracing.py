"""The span tree of one brief, recorded with the in-memory exporter: a Slack request for the
injection scenario (planted secrets and PII in its logs and runbook) drafted through the
gateway against the sandbox's simulated model. Every stage is a span under one trace, and no
attribute anywhere carries a planted value or anything the redactor would mask."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from bot.core.redaction import find
from evals.scorers import planted_secrets
from sandbox.people import trigger, wait_for
from sandbox.scenario import Scenario
from tests.helpers.slack_app import running_bot
from tests.helpers.telemetry import attribute_strings, model_drafter, recorded_spans, sandbox_model, span_tree

STAGES = {"intake", "brief", "gather", "tool_call", "draft", "model_call", "validate", "publish"}


async def test_one_brief_is_one_span_tree_with_no_secret_in_any_attribute(
        search_injection: Scenario, tmp_path: Path) -> None:
    planted = planted_secrets(search_injection)
    assert planted, "the scenario plants secrets, so the scan below can find one"
    with sandbox_model(), recorded_spans() as exporter:
        async with running_bot(search_injection, tmp_path / "trace.db", drafter=model_drafter()) as h:
            await trigger(search_injection, h.sb, h.url)
            await wait_for(h.brief_message, "the brief in Slack")
            await h.rt.idle()
            key = (await h.rt.store.latest_incident_in_channel(h.brief_message().channel)).key
            provider_host = urlparse(h.sb.url("llm")).hostname
    spans = list(exporter.get_finished_spans())
    [root] = [s for s in spans if s.name == "brief" and (s.attributes or {}).get("incident.key") == key]
    tree = span_tree(spans, root)
    names = {span.name for span in tree}
    assert names >= STAGES - {"intake"}, f"missing stages: {STAGES - names}"
    intake = next(s for s in spans if s.context.span_id == root.parent.span_id)
    assert intake.name == "intake", "the brief is a child of the request that asked for it"
    assert {span.context.trace_id for span in tree} == {root.context.trace_id}
    by_name = {span.name: span for span in tree}
    assert by_name["model_call"].attributes["gen_ai.request.model"]
    assert by_name["model_call"].attributes["outcome"] in {"ok", "repaired"}
    assert by_name["model_call"].attributes["gen_ai.usage.input_tokens"] > 0
    assert "cost.usd" in by_name["model_call"].attributes
    tool_calls = [span for span in tree if span.name == "tool_call"]
    assert {span.attributes["tool.source"] for span in tool_calls} >= {"datadog", "github"}
    assert all(span.attributes["incident.key"] == key for span in tool_calls)
    assert any(span.attributes["outcome"] == "gap" for span in tool_calls), "the Confluence outage is a gap"
    assert by_name["validate"].attributes["citations.coverage"] == 1.0
    assert any(span.name.startswith("chat ") or "gen_ai.operation.name" in (span.attributes or {})
               for span in tree if span.name != "model_call"), "pydantic-ai's own request spans join the tree"

    everything = attribute_strings(spans)
    assert len(everything) > 50
    leaked = [(span, attr) for span, attr, value in everything for secret in planted if secret in value]
    assert leaked == []
    # pydantic-ai names the provider's host (`server.address`): api.openai.com in production, the
    # sandbox's loopback address here, which the redactor takes for a person's IP. That one only.
    flagged = [(span, attr, value[:80]) for span, attr, value in everything
               if find(value) and not (attr == "server.address" and value == provider_host)]
    assert flagged == []
