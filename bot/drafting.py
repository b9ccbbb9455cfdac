"""Drafters turn gathered evidence into a `Brief`. The workflow does not care which one ran.

`OfflineDrafter` needs no model: the embedded default and the last resort of every
fallback chain. The model-backed drafter lives with the gateway (`bot/gateway/`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bot.models import Alert, Brief, Evidence, ServiceEntry, SourceGap, TimeWindow
from bot.offline_drafter import draft_offline

if TYPE_CHECKING:
    from bot.scenario import Scenario


class Drafter(Protocol):
    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow,
                    evidence: list[Evidence], gaps: list[SourceGap]) -> Brief: ...


class OfflineDrafter:
    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow,
                    evidence: list[Evidence], gaps: list[SourceGap]) -> Brief:
        return draft_offline(alert, service, window, evidence, gaps)


def drafter_for(name: str, *, scenario: Scenario | None = None) -> Drafter:
    """A drafter by its CLI name."""
    if name == "offline":
        return OfflineDrafter()
    if name == "llm":
        # The model path through the gateway; it falls back to OfflineDrafter and says so.
        from bot.gateway.factory import ScenarioLlmDrafter, llm_drafter

        if scenario is not None:
            return ScenarioLlmDrafter(scenario)
        from bot.config import Settings
        from bot.policy import default_policy

        return llm_drafter(Settings().llm, default_policy())
    raise ValueError(f"unknown drafter {name!r}: expected 'offline' or 'llm'")
