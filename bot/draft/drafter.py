"""Drafters turn gathered evidence into a `Brief`. The flow does not care which one ran.

`OfflineDrafter` needs no model: the embedded default and the last resort of every
fallback chain. The model-backed drafter lives with the gateway (`bot.gateway.drafter`).
Both are told the incident key, so a model call's audit row is filed with the tool calls.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.models import Alert, Brief, Evidence, ServiceEntry, SourceGap, TimeWindow
from bot.draft.offline import draft_offline


class Drafter(Protocol):
    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow,
                    evidence: list[Evidence], gaps: list[SourceGap], *, key: str | None = None) -> Brief: ...


class OfflineDrafter:
    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow,
                    evidence: list[Evidence], gaps: list[SourceGap], *, key: str | None = None) -> Brief:
        del key  # nothing to audit: no model is called
        return draft_offline(alert, service, window, evidence, gaps)
