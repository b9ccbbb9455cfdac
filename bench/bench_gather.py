"""Gather fan-out: the whole gather phase against the slowest single source, and against
fetching one read after another.

The bundled deploy-regression scenario runs with injected latencies per source (the
sandbox holds each response that long), through the real connectors and the tool choke point
(policy, timeout, redaction, audit). Target: gather within 1.10x of the slowest source.
Ratios are measured in one run; take the median of a few rounds.

    uv run python -m bench gather [--rounds=N]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from bot.audit import MemoryAudit
from bot.catalog import Catalog
from bot.policy import default_policy
from bot.scenario import Scenario, bundled_scenarios_dir, load_scenario, parse_scenario
from bot.tools import ToolRunner
from bot.workflow import Connectors, incident_window, plan_reads
from sandbox.server import Sandbox

LATENCY_MS = {"datadog": 250, "github": 180, "confluence": 400, "pagerduty": 120, "jira": 220}
TARGET = 1.10


def _with_latency(base: Scenario) -> Scenario:
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw["world"]["faults"] = {"latency_ms": LATENCY_MS}
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} with latency")


async def _all(runner: ToolRunner, reads: list[Any]) -> None:
    await asyncio.gather(*(runner.read(tool, src, call, args=args) for tool, src, call, args in reads))


async def _timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return (time.perf_counter() - started) * 1000


async def _round(scenario: Scenario, sb: Sandbox) -> dict[str, float]:
    alert = scenario.alert.to_alert()
    service = Catalog(scenario.service_entries()).resolve(alert.service)
    window = incident_window(alert, scenario.now)
    settings = sb.settings()
    connectors = Connectors.from_settings(settings)

    def runner() -> ToolRunner:
        return ToolRunner(policy=default_policy(), audit=MemoryAudit(), brief_key="bench", timeout_s=30)

    try:
        plan = plan_reads(alert, service, window, connectors)
        by_source: dict[str, list[Any]] = {}
        for item in plan:
            by_source.setdefault(item[1].value, []).append(item)
        timings: dict[str, float] = {}
        for source, reads in by_source.items():
            timings[f"source:{source}"] = await _timed(partial(_all, runner(), reads))
        timings["gather"] = await _timed(partial(_all, runner(), plan))
        serial = runner()

        async def one_after_another() -> None:
            for tool, src, call, args in plan:
                await serial.read(tool, src, call, args=args)

        timings["sequential"] = await _timed(one_after_another)
        return timings
    finally:
        await connectors.aclose()


async def _run(rounds: int) -> list[dict[str, float]]:
    scenario = _with_latency(load_scenario(bundled_scenarios_dir() / "checkout-5xx-after-deploy.yaml"))
    with Sandbox(scenario) as sb:
        await _round(scenario, sb)  # warm-up: imports, connections, template miner
        return [await _round(scenario, sb) for _ in range(rounds)]


def main(options: list[str] | None = None) -> None:
    rounds = 5
    for option in options or []:
        if option.startswith("--rounds="):
            rounds = int(option.split("=", 1)[1])
    results = asyncio.run(_run(rounds))
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    sources = {k.removeprefix("source:"): v for k, v in median.items() if k.startswith("source:")}
    slowest_name, slowest = max(sources.items(), key=lambda kv: kv[1])
    gather, sequential = median["gather"], median["sequential"]
    print(f"injected latency per response (ms): {LATENCY_MS}; {rounds} rounds, medians")
    for name, ms in sorted(sources.items(), key=lambda kv: -kv[1]):
        print(f"  source {name:<11} {ms:8.1f} ms")
    print(f"  gather (all reads concurrently)   {gather:8.1f} ms")
    print(f"  one read after another            {sequential:8.1f} ms")
    ratio = gather / slowest
    print(f"gather / slowest source ({slowest_name}): {ratio:.3f}x  (target <= {TARGET:.2f}x: "
          f"{'met' if ratio <= TARGET else 'missed'})")
    print(f"gather / sequential: {gather / sequential:.3f}x  ({sequential / gather:.1f}x faster)")


if __name__ == "__main__":
    main()
