"""Assemble the model-backed drafter from settings and policy (production), or around a
scenario's sandbox model (``incident-brief draft --scenario FILE --drafter llm``, evals)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.audit import AuditSink, MemoryAudit
from bot.gateway.drafter import LlmDrafter
from bot.gateway.gateway import Gateway, GatewayRules
from bot.gateway.store import GatewayStore, MemoryGatewayStore
from bot.models import Alert, Brief, Evidence, ServiceEntry, SourceGap, TimeWindow

if TYPE_CHECKING:
    from bot.config import LlmSettings
    from bot.policy import Policy
    from bot.scenario import Scenario


def llm_drafter(settings: LlmSettings, policy: Policy, *, store: GatewayStore | None = None,
                audit: AuditSink | None = None) -> LlmDrafter:
    gateway = Gateway(settings, store=store or MemoryGatewayStore(), audit=audit or MemoryAudit(),
                      rules=GatewayRules.from_policy(policy))
    return LlmDrafter(gateway, workspace=settings.workspace)


class ScenarioLlmDrafter:
    """An `LlmDrafter` whose models are the scenario's sandbox model (OpenAI-compatible first,
    Anthropic-compatible as the fallback), started for each draft. Cache, ledger and audit
    live as long as this object, so a second identical draft is a cache hit."""

    def __init__(self, scenario: Scenario, policy: Policy | None = None) -> None:
        from bot.policy import default_policy

        self.scenario = scenario
        self.policy = policy or default_policy()
        self.store = MemoryGatewayStore()
        self.audit = MemoryAudit()
        self.last: LlmDrafter | None = None

    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow,
                    evidence: list[Evidence], gaps: list[SourceGap]) -> Brief:
        from sandbox.server import Sandbox

        with Sandbox(self.scenario, systems=["llm"]) as sandbox:
            self.last = llm_drafter(sandbox.settings().llm, self.policy, store=self.store, audit=self.audit)
            return await self.last.draft(alert, service, window, evidence, gaps)
