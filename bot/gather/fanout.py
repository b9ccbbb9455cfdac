"""Gathering: every planned read at once through the tool choke point, the slowest source
(not the sum) setting the latency, a failing source becoming a `SourceGap`."""

from __future__ import annotations

import asyncio

from bot.core.models import Alert, Evidence, ServiceEntry, Source, SourceGap, TimeWindow
from bot.gather.connectors import Connectors
from bot.gather.plan import Planned, plan_follow_ups, plan_reads
from bot.gather.tools import ReadOutcome, ToolRunner


async def _run(plan: list[Planned], runner: ToolRunner) -> list[ReadOutcome]:
    return list(await asyncio.gather(*(runner.read(tool, source, call, args=args)
                                       for tool, source, call, args in plan)))


async def gather(alert: Alert, service: ServiceEntry, window: TimeWindow, runner: ToolRunner,
                 connectors: Connectors) -> tuple[list[Evidence], list[SourceGap]]:
    """Every planned read concurrently; the follow-ups start as soon as the reads they depend
    on (Datadog's) are in, so they overlap the slower sources instead of waiting for them.
    Evidence is folded in plan order, whatever order the answers arrive in."""
    plan = plan_reads(alert, service, window, connectors)
    datadog_reads = [item for item in plan if item[1] == Source.DATADOG]
    other_reads = [item for item in plan if item[1] != Source.DATADOG]

    async def datadog_then_follow_ups() -> tuple[list[ReadOutcome], list[ReadOutcome]]:
        first = await _run(datadog_reads, runner)
        seen = [item for outcome in first for item in outcome.evidence]
        follow_ups = plan_follow_ups(seen, window, connectors)
        return first, (await _run(follow_ups, runner) if follow_ups else [])

    (datadog_first, follow_up_outcomes), others = await asyncio.gather(
        datadog_then_follow_ups(), _run(other_reads, runner))
    by_plan_order = {id(item): outcome for item, outcome in zip(datadog_reads, datadog_first, strict=True)}
    by_plan_order.update({id(item): outcome for item, outcome in zip(other_reads, others, strict=True)})
    outcomes = [by_plan_order[id(item)] for item in plan] + follow_up_outcomes
    evidence: dict[str, Evidence] = {}
    gaps: list[SourceGap] = []
    for outcome in outcomes:
        if outcome.gap is not None:
            gaps.append(outcome.gap)
        for found in outcome.evidence:
            evidence.setdefault(found.id, found)
    return list(evidence.values()), gaps
