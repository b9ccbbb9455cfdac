"""Shared material for the gateway tests (no tests here): evidence built from a scenario's world,
rules, and a gateway over pydantic-ai `FunctionModel`s that count their calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from bot.core.audit import MemoryAudit
from bot.core.config import LlmSettings, ModelPrice
from bot.core.models import (
    Alert,
    Evidence,
    EvidenceKind,
    Provenance,
    ServiceEntry,
    Source,
    TimeWindow,
    evidence_id,
)
from bot.core.policy import SpendLimits
from bot.gateway import Gateway, GatewayRules, MemoryGatewayStore
from sandbox.scenario import Scenario

PRIMARY = "openai:primary@2026-01-01"
SECONDARY = "anthropic:secondary@20260101"
PRICES = {PRIMARY: ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0),
          SECONDARY: ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0)}


def world_evidence(scenario: Scenario) -> list[Evidence]:
    """One evidence item per log line, metric and deploy of the world, with their raw text (the
    planted secrets and injections included), as the connectors would quote them."""
    now = scenario.now
    out: list[Evidence] = []

    def add(kind: EvidenceKind, source: Source, ref: str, title: str, excerpt: str, at: Any) -> None:
        out.append(Evidence(id=evidence_id(kind, ref), kind=kind, source=source, title=title, excerpt=excerpt,
                            timestamp=at, provenance=Provenance(system=source, tool="test", request="GET /",
                                                                fetched_at=now)))

    for log in scenario.world.logs:
        add(EvidenceKind.LOG_PATTERN, Source.DATADOG, log.message, log.message,
            f"{log.count} {log.status} lines from {log.from_:%H:%M}", log.from_)
    for metric in scenario.world.metrics:
        first, last = metric.segments[0], metric.segments[-1]
        add(EvidenceKind.METRIC, Source.DATADOG, metric.query, metric.query,
            f"level {first.value} then {last.value} from {last.from_:%H:%M}", last.from_)
    for deploy in scenario.world.deploys:
        add(EvidenceKind.DEPLOY, Source.GITHUB, deploy.sha, f"{deploy.ref or deploy.sha} to {deploy.environment}",
            deploy.description or "", deploy.created_at)
    for runbook in scenario.world.runbooks:
        add(EvidenceKind.RUNBOOK, Source.CONFLUENCE, runbook.page_id, runbook.title, runbook.body,
            runbook.updated_at)
    return out


def scenario_inputs(scenario: Scenario) -> tuple[Alert, ServiceEntry, TimeWindow, list[Evidence]]:
    alert = scenario.alert.to_alert()
    service = next(s for s in scenario.service_entries() if s.name == alert.service)
    start = alert.triggered_at - timedelta(hours=1)
    window = TimeWindow(alert_at=alert.triggered_at, start=start, end=scenario.now,
                        baseline_start=start - timedelta(hours=3))
    return alert, service, window, world_evidence(scenario)


def rules(*, redact: bool = True, user_day: float = 2.0, workspace_month: float = 500.0,
          steps: int = 3) -> GatewayRules:
    limits = SpendLimits(per_user_usd_per_day=user_day, per_workspace_usd_per_month=workspace_month)
    return GatewayRules(redact_prompts=redact, limits=limits, max_model_calls_per_brief=steps)


def settings(**overrides: Any) -> LlmSettings:
    values: dict[str, Any] = {"routes": {"brief": PRIMARY, "ticket": PRIMARY}, "fallbacks": [SECONDARY],
                              "prices": PRICES, "timeout_s": 2.0}
    values.update(overrides)
    return LlmSettings(**values)


Answer = Callable[[list[ModelMessage], AgentInfo], ModelResponse]


@dataclass
class Scripted:
    """A FunctionModel whose answers are scripted; records every request it receives."""

    answers: list[Any]  # dict -> tool call with that JSON; str -> raw arguments; Exception -> raised
    seen: list[list[ModelMessage]] = field(default_factory=list)

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.seen.append(messages)
        answer = self.answers[min(len(self.seen), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        args = answer if isinstance(answer, str) else json.dumps(answer)
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, args)])

    def model(self) -> FunctionModel:
        return FunctionModel(self)

    def sent_text(self) -> str:
        return "\n".join(str(part) for messages in self.seen for message in messages for part in message.parts)


def gateway(primary: Scripted, secondary: Scripted | None = None, *, gateway_rules: GatewayRules | None = None,
            store: MemoryGatewayStore | None = None, audit: MemoryAudit | None = None,
            **setting_overrides: Any) -> Gateway:
    models = {PRIMARY: primary.model(), SECONDARY: (secondary or Scripted([RuntimeError("unused")])).model()}
    return Gateway(settings(**setting_overrides), store=store or MemoryGatewayStore(), audit=audit or MemoryAudit(),
                   rules=gateway_rules or rules(), models=models)


def good_brief(evidence_ids: list[str], project: str | None = None) -> dict[str, Any]:
    cite = evidence_ids[:1]
    brief: dict[str, Any] = {
        "headline": {"text": "search-api latency from a saturated Elasticsearch", "citations": cite},
        "impact": {"text": "p95 latency above 2 s", "citations": evidence_ids[1:2] or cite},
        "likely_causes": [{"kind": "dependency", "confidence": "medium",
                           "claim": {"text": "Elasticsearch queries time out", "citations": cite}}],
        "next_actions": [{"text": "Check the cluster", "citations": cite}],
    }
    if project:
        brief["ticket"] = {"project": project, "summary": "search-api latency", "description": "ES timeouts",
                           "citations": cite}
    return brief
