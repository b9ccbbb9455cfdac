"""The LLM gateway: the only way the bot reaches a model (see docs/gateway.md)."""

from bot.gateway.gateway import Attempt, Gateway, GatewayConfigError, GatewayResult, GatewayRules, cache_key
from bot.gateway.metered import Caller, SpendLimitReached, StepCapReached, StepCounter
from bot.gateway.refs import ModelRef, ModelRefError
from bot.gateway.store import GatewayStore, MemoryGatewayStore

__all__ = [
    "Attempt", "Caller", "Gateway", "GatewayConfigError", "GatewayResult", "GatewayRules", "GatewayStore",
    "MemoryGatewayStore", "ModelRef", "ModelRefError", "SpendLimitReached", "StepCapReached", "StepCounter",
    "cache_key",
]
