"""Drafters turn gathered evidence into a `Brief`. The flow does not care which one ran.

`OfflineDrafter` needs no model: the embedded default and the last resort of every
fallback chain. The model-backed drafter lives with the gateway (`bot.gateway.drafter`).
Both are told the incident key, so a model call's audit row is filed with the tool calls.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from bot.analyse.analyser import analyse
from bot.core.models import Alert, Brief, Evidence, ServiceEntry, SourceGap, TimeWindow
from bot.draft.offline import draft_offline
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import span


class Drafter(Protocol):
    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow,
                    evidence: list[Evidence], gaps: list[SourceGap], *, key: str | None = None) -> Brief: ...


class OfflineDrafter:
    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow,
                    evidence: list[Evidence], gaps: list[SourceGap], *, key: str | None = None) -> Brief:
        # Pure CPU work (the analysis and the writing) off the event loop: the process that
        # drafts also acknowledges webhooks, and a storm's drafting would otherwise hold their
        # answers for the length of each analysis (bench/reports/storm.md).
        return await asyncio.to_thread(self._draft, alert, service, window, evidence, gaps, key)

    @staticmethod
    def _draft(alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence],
               gaps: list[SourceGap], key: str | None) -> Brief:
        # No model is called, so nothing to audit; the analysis is its own span.
        with span("analyse", **{"incident.key": key}):
            signals = analyse(alert, service, window, evidence)
            telemetry.analysed(hypotheses=len(signals.hypotheses), top_cause=signals.top.kind.value)
        return draft_offline(alert, service, window, evidence, gaps, signals)
