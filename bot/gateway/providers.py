"""A pinned model reference to a pydantic-ai model talking to the configured endpoint.

The SDKs' own retries are off (``max_retries=0``): the gateway's fallback chain decides what
happens after a failure, and a hidden retry would double the spend and the latency.
"""

from __future__ import annotations

from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from bot.core.config import LlmSettings
from bot.gateway.refs import ModelRef

# The SDK's own timeout is a backstop; the gateway's per-request timeout fires first.
SDK_TIMEOUT_MARGIN_S = 5.0


def build_model(ref: ModelRef, settings: LlmSettings) -> Model:
    name = ref.wire_name(settings.wire_names)
    timeout = settings.timeout_s + SDK_TIMEOUT_MARGIN_S
    if ref.provider == "openai":
        openai_client = AsyncOpenAI(base_url=settings.openai.base_url,
                                    api_key=settings.openai.api_key.get_secret_value() or "unset",
                                    max_retries=0, timeout=timeout)
        return OpenAIChatModel(name, provider=OpenAIProvider(openai_client=openai_client))
    anthropic_client = AsyncAnthropic(base_url=settings.anthropic.base_url,
                                      api_key=settings.anthropic.api_key.get_secret_value() or "unset",
                                      max_retries=0, timeout=timeout)
    return AnthropicModel(name, provider=AnthropicProvider(anthropic_client=anthropic_client))
