"""Pinned model references: ``provider:model@version``, as config writes them and briefs record them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.core.errors import ConfigError

Provider = Literal["openai", "anthropic"]
_REF = re.compile(r"^(?P<provider>openai|anthropic):(?P<model>[A-Za-z0-9._/:-]+?)@(?P<version>[A-Za-z0-9._-]+)$")


class ModelRefError(ConfigError, ValueError):
    """A model reference that is not ``provider:model@version`` with a known provider."""


@dataclass(frozen=True)
class ModelRef:
    provider: Provider
    model: str
    version: str

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        found = _REF.match(ref.strip())
        if not found:
            raise ModelRefError(
                f"model {ref!r} is not pinned: write provider:model@version with provider openai or "
                "anthropic (an OpenAI-compatible server is provider openai with its own base_url)")
        provider: Provider = "openai" if found["provider"] == "openai" else "anthropic"
        return cls(provider, found["model"], found["version"])

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}@{self.version}"

    def wire_name(self, overrides: dict[str, str] | None = None) -> str:
        """The name the provider's API expects: ``gpt-4.1-2025-04-14``, ``claude-sonnet-4-5-20250929``."""
        return (overrides or {}).get(str(self)) or f"{self.model}-{self.version}"
