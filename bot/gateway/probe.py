"""`doctor`'s model check: one tiny request through the gateway, as a brief's would go.

The request takes the brief's route (its model, then the fallbacks), under the policy's spend
limits and step cap, with a fresh in-memory cache (so it really reaches the provider) and an
in-memory ledger (a health check is not a person's spend). What comes back says which model
answered, in how long, and what the request cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from bot.core.audit import MemoryAudit
from bot.core.config import LlmSettings
from bot.core.errors import ConfigError
from bot.core.policy import Policy
from bot.draft.prompts import PackedEvidence, RenderedPrompt, load_template
from bot.gateway.gateway import Gateway, GatewayRules
from bot.gateway.metered import Caller
from bot.gateway.store import MemoryGatewayStore

PROBE_SYSTEM = "You answer connectivity checks for an incident bot."


class ProbeAnswer(BaseModel):
    ok: bool


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    detail: str
    cost_usd: float = 0.0


def probe_prompt() -> RenderedPrompt:
    template = load_template("doctor")
    return RenderedPrompt(template=template, system=PROBE_SYSTEM, user=template.render(),
                          packed=PackedEvidence(text="", included=(), cut=(), tokens=0))


async def probe_model(settings: LlmSettings, policy: Policy) -> ProbeOutcome:
    """One request on the brief's route; `ok` when a model answered as asked."""
    try:
        gateway = Gateway(settings, store=MemoryGatewayStore(), audit=MemoryAudit(),
                          rules=GatewayRules.from_policy(policy))
    except ConfigError as exc:
        return ProbeOutcome(False, str(exc))
    result = await gateway.run("brief", probe_prompt(), ProbeAnswer,
                               caller=Caller(brief_key="doctor", user=None, workspace="doctor"))
    tried = "; ".join(f"{a.model}: {a.outcome}{f' ({a.detail})' if a.detail else ''}" for a in result.attempts)
    if result.output is None or not result.output.ok:
        return ProbeOutcome(False, result.fallback_reason or tried or "no answer", result.cost_usd)
    took = result.timings_ms.get("model", 0.0)
    fell_back = f" after {tried}" if len(result.attempts) > 1 else ""
    return ProbeOutcome(True, f"{result.model} answered in {took:.0f} ms{fell_back}: "
                              f"{result.input_tokens + result.output_tokens} tokens, "
                              f"${result.cost_usd:.6f}", result.cost_usd)
