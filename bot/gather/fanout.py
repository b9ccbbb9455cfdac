"""Gathering: every planned read at once through the tool choke point, the slowest source
(not the sum) setting the latency, a failing source becoming a `SourceGap`.

`Gathering` exposes the partial state while reads are still out (issue 10: a brief never waits
for the slowest source): `wait(timeout)` returns a `Snapshot` of what is in at that moment
(evidence, gaps, and the sources still pending), so the flow can draft at its deadline and again
when the rest is in. `gather` is the all-in case: wait for everything.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from bot.core.models import Alert, Evidence, ServiceEntry, Source, SourceGap, TimeWindow
from bot.gather.connectors import Connectors
from bot.gather.plan import Planned, plan_follow_ups, plan_reads
from bot.gather.tools import ReadOutcome, ToolRunner


@dataclass(frozen=True)
class Snapshot:
    """What the gathering holds at one moment: evidence folded in plan order (follow-ups
    last), the gaps so far, and the sources with a read still out."""

    evidence: list[Evidence]
    gaps: list[SourceGap]
    pending: list[Source]
    answered: list[Source] = field(default_factory=list)  # sources with every read back

    @property
    def done(self) -> bool:
        return not self.pending


class Gathering:
    """One incident's reads, started at once and folded as they arrive. Start with `start()`;
    `wait()` never cancels a read (a timeout only stops waiting); `aclose()` cancels what is
    still out (a caller that gives up)."""

    def __init__(self, alert: Alert, service: ServiceEntry, window: TimeWindow, runner: ToolRunner,
                 connectors: Connectors) -> None:
        self.window = window
        self.runner = runner
        self.connectors = connectors
        self.plan = plan_reads(alert, service, window, connectors)
        self._outcomes: dict[int, ReadOutcome] = {}  # plan position -> outcome
        self._follow_ups: list[ReadOutcome] = []
        # Reads still out, per source; Datadog counts one more until its follow-ups are planned.
        self._out: Counter[Source] = Counter(source for _tool, source, _call, _args in self.plan)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Gathering:
        if self._task is None:
            if any(source == Source.DATADOG for _t, source, _c, _a in self.plan):
                self._out[Source.DATADOG] += 1  # the follow-up planning, which waits on Datadog
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gather")
        return self

    async def wait(self, timeout: float | None = None) -> Snapshot:
        """Wait until every read is back or `timeout` seconds pass, whichever is first, and
        return what is in. A read's own failure is already a gap (the choke point never raises
        for a source); a bug in the gathering itself is raised here."""
        task = self.start()._task
        assert task is not None
        if timeout is None or timeout > 0:
            await asyncio.wait({task}, timeout=timeout)
        if task.done():
            task.result()
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        outcomes = [self._outcomes[i] for i in sorted(self._outcomes)] + self._follow_ups
        evidence: dict[str, Evidence] = {}
        gaps: list[SourceGap] = []
        for outcome in outcomes:
            if outcome.gap is not None:
                gaps.append(outcome.gap)
            for found in outcome.evidence:
                evidence.setdefault(found.id, found)
        pending = [source for source in Source if self._out[source] > 0]
        planned = dict.fromkeys(source for _t, source, _c, _a in self.plan)
        answered = [source for source in planned if self._out[source] == 0]
        return Snapshot(list(evidence.values()), gaps, pending, answered)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self, planned: Planned) -> ReadOutcome:
        tool, source, call, args = planned
        try:
            return await self.runner.read(tool, source, call, args=args)
        finally:
            self._out[source] -= 1

    async def _run(self) -> None:
        """The follow-ups start as soon as the reads they depend on (Datadog's) are in, so they
        overlap the slower sources instead of waiting for them."""
        indexed = list(enumerate(self.plan))
        datadog = [(i, item) for i, item in indexed if item[1] == Source.DATADOG]
        others = [(i, item) for i, item in indexed if item[1] != Source.DATADOG]

        async def keep(i: int, item: Planned) -> None:
            self._outcomes[i] = await self._read(item)

        async def datadog_then_follow_ups() -> None:
            await asyncio.gather(*(keep(i, item) for i, item in datadog))
            seen = [found for i, _item in datadog for found in self._outcomes[i].evidence]
            follow_ups = plan_follow_ups(seen, self.window, self.connectors)
            self._out.update(source for _t, source, _c, _a in follow_ups)
            self._out[Source.DATADOG] -= 1  # the follow-ups are planned: they count themselves
            self._follow_ups.extend(await asyncio.gather(*(self._read(item) for item in follow_ups)))

        await asyncio.gather(*([datadog_then_follow_ups()] if datadog else []),
                             *(keep(i, item) for i, item in others))


async def gather(alert: Alert, service: ServiceEntry, window: TimeWindow, runner: ToolRunner,
                 connectors: Connectors) -> tuple[list[Evidence], list[SourceGap]]:
    """Every planned read concurrently, waiting for all of them. Evidence is folded in plan
    order, whatever order the answers arrive in."""
    gathering = Gathering(alert, service, window, runner, connectors)
    try:
        snapshot = await gathering.wait()
    finally:
        await gathering.aclose()
    return snapshot.evidence, snapshot.gaps
