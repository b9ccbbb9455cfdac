"""Gather fan-out: the whole gather phase against the slowest single source, and against
fetching one read after another.

A bundled scenario (default: the checkout deploy regression) runs with injected latencies per
source: a variant is built in code with ``world.faults.latency_ms``, so the sandbox holds every
response of a source that long. Everything goes through the real connectors and the tool choke
point (policy, timeout, redaction, audit). Each round measures, back to back on warm connections:

- ``gather``: `bot.gather.fanout.gather` itself (planned reads concurrently, then any follow-ups);
- each source alone: that source's planned reads (then its follow-ups) concurrently;
- one read after another: the same reads, each awaited before the next starts.

The ratios are computed within each round (so both sides saw the same machine load) and the
median over rounds is reported with its range. Target: gather within 1.10x of the slowest source.
A round in which any read became a gap is not a valid measurement and is reported as such.

    uv run python -m bench gather [--rounds=N] [--scenario=NAME]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.audit import MemoryAudit
from bot.core.policy import default_policy
from bot.gather.connectors import Connectors
from bot.gather.fanout import gather
from bot.gather.plan import Planned, incident_window, plan_follow_ups, plan_reads
from bot.gather.tools import ToolRunner
from bot.intake.catalog import Catalog
from sandbox.scenario import Scenario, bundled_scenarios_dir, load_scenario, parse_scenario
from sandbox.server import Sandbox

LATENCY_MS = {"datadog": 250, "github": 180, "confluence": 400, "pagerduty": 120, "jira": 220}
TARGET = 1.10
DEFAULT_SCENARIO = "checkout-5xx-after-deploy"


@dataclass
class Round:
    gather_ms: float
    sequential_ms: float
    source_ms: dict[str, float]
    reads: int
    gaps: list[str] = field(default_factory=list)

    @property
    def slowest(self) -> tuple[str, float]:
        return max(self.source_ms.items(), key=lambda kv: kv[1])

    @property
    def vs_slowest(self) -> float:
        return self.gather_ms / self.slowest[1]

    @property
    def speedup(self) -> float:
        return self.sequential_ms / self.gather_ms


def with_latency(base: Scenario, latency_ms: dict[str, int]) -> Scenario:
    """The same scenario with every response of each source held `latency_ms[source]` ms."""
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw["world"]["faults"] = {"latency_ms": latency_ms}
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} with latency")


def _runner() -> ToolRunner:
    return ToolRunner(policy=default_policy(), audit=MemoryAudit(), brief_key="bench", timeout_s=30)


async def _concurrently(reads: list[Planned]) -> None:
    runner = _runner()
    await asyncio.gather(*(runner.read(tool, src, call, args=args) for tool, src, call, args in reads))


async def _timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work()
    return (time.perf_counter() - started) * 1000, result


async def _round(scenario: Scenario, sb: Sandbox) -> Round:
    alert = scenario.alert.to_alert()
    service = Catalog(scenario.service_entries()).resolve(alert.service)
    window = incident_window(alert, scenario.now)
    connectors = Connectors.from_settings(sb.settings())
    try:
        gather_ms, (evidence, gaps) = await _timed(lambda: gather(alert, service, window, _runner(), connectors))
        # The same work as gather did: the planned reads and the follow-ups its evidence called for.
        reads = plan_reads(alert, service, window, connectors)
        follow_ups = plan_follow_ups(evidence, window, connectors)
        source_ms: dict[str, float] = {}
        for source in dict.fromkeys(src.value for _, src, _, _ in reads + follow_ups):
            first = [r for r in reads if r[1].value == source]
            then = [r for r in follow_ups if r[1].value == source]

            async def one_source(first: list[Planned] = first, then: list[Planned] = then) -> None:
                await _concurrently(first)
                if then:
                    await _concurrently(then)

            source_ms[source], _ = await _timed(one_source)

        async def one_after_another() -> None:
            runner = _runner()
            for tool, src, call, args in reads + follow_ups:
                await runner.read(tool, src, call, args=args)

        sequential_ms, _ = await _timed(one_after_another)
        return Round(gather_ms, sequential_ms, source_ms, len(reads) + len(follow_ups),
                     [f"{gap.source}: {gap.reason}" for gap in gaps])
    finally:
        await connectors.aclose()


async def run(scenario_name: str = DEFAULT_SCENARIO, rounds: int = 5) -> list[Round]:
    base = load_scenario(bundled_scenarios_dir() / f"{scenario_name}.yaml")
    scenario = with_latency(base, LATENCY_MS)
    with Sandbox(scenario) as sb:
        await _round(scenario, sb)  # warm-up: imports, connections, the template miner
        return [await _round(scenario, sb) for _ in range(rounds)]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}x (range {min(values):.3f}-{max(values):.3f})"


def report(results: list[Round], scenario_name: str) -> list[str]:
    valid = [r for r in results if not r.gaps]
    lines = [f"scenario {scenario_name}; injected latency per response (ms): {LATENCY_MS}",
             f"{len(results)} rounds, {results[0].reads} reads each; medians below"]
    sources = results[0].source_ms
    medians = {name: statistics.median(r.source_ms[name] for r in results) for name in sources}
    for name, ms in sorted(medians.items(), key=lambda kv: -kv[1]):
        lines.append(f"  source {name:<11} alone             {ms:8.1f} ms")
    lines.append(f"  gather (bot.gather.fanout.gather){statistics.median(r.gather_ms for r in results):8.1f} ms")
    lines.append(f"  one read after another            {statistics.median(r.sequential_ms for r in results):8.1f} ms")
    for r in results:
        if r.gaps:
            lines.append(f"  INVALID round (a read became a gap): {'; '.join(r.gaps)}")
    if not valid:
        lines.append("no valid round: no ratios")
        return lines
    ratios = [r.vs_slowest for r in valid]
    slowest = statistics.mode(r.slowest[0] for r in valid)
    verdict = "met" if statistics.median(ratios) <= TARGET else "missed"
    lines.append(f"gather / slowest source ({slowest}), per round: {_spread(ratios)}  "
                 f"(target <= {TARGET:.2f}x: {verdict})")
    lines.append(f"one after another / gather, per round: {_spread([r.speedup for r in valid])} slower")
    return lines


def main(options: list[str] | None = None) -> None:
    rounds, scenario_name = 5, DEFAULT_SCENARIO
    for option in options or []:
        if option.startswith("--rounds="):
            rounds = int(option.split("=", 1)[1])
        elif option.startswith("--scenario="):
            scenario_name = option.split("=", 1)[1].removesuffix(".yaml")
    results = asyncio.run(run(scenario_name, rounds))
    print("\n".join(report(results, scenario_name)))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
