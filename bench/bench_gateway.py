"""The gateway's own overhead per model call, against a direct call to the same endpoint.

Both paths send the same ~3,000-token brief prompts (evidence with planted emails, keys and
card numbers, so redaction has work) to the sandbox's OpenAI-compatible endpoint through the
same pydantic-ai model and output type. The direct path is a bare ``Agent.run``; the gateway
path adds redaction, the cache lookup and write, the spend check and charge, the citation
validator, output redaction and the audit row. Every prompt is new (no cache hits) unless
``--cache-hits`` is given. The store and audit are in memory (the benchmark measures the
gateway, not a database); ``--sqlite`` uses the real store on a temporary SQLite file.

Usage: ``uv run --frozen python -m bench gateway [--calls=N] [--cache-hits] [--sqlite] [--dense]``
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, models
from pydantic_ai.settings import ModelSettings

from bot.core.audit import MemoryAudit
from bot.core.models import Brief, Evidence, EvidenceKind, Provenance, Source, evidence_id
from bot.core.policy import SpendLimits
from bot.draft.prompts import RenderedPrompt, estimate_tokens, render_brief_prompt
from bot.gateway import Caller, Gateway, GatewayRules, MemoryGatewayStore, ModelRef
from bot.gateway.drafter import brief_problems
from bot.gateway.providers import build_model
from bot.gateway.store import GatewayStore
from sandbox.scenario import Scenario, bundled_scenarios_dir, load_scenario
from sandbox.server import Sandbox

PROMPT_TOKENS = 3_000
TARGET_P95_MS = 5.0
STAGES = ("redact", "cache", "ledger", "validate", "output_redact", "audit")
PLANTED = ("reach jane.doe@example.com or +1 415 555 0134; card 4111 1111 1111 1111; "
           "key AKIAIOSFODNN7EXAMPLE token=sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123 ")


def _evidence(scenario: Scenario, salt: int, dense: bool) -> list[Evidence]:
    """About PROMPT_TOKENS of evidence: log patterns and metrics; one block in four (every block
    with `dense`) carries an email, a phone number, a card number and two API keys."""
    items: list[Evidence] = []
    at = scenario.alert.triggered_at
    for n in range(24):
        kind = EvidenceKind.LOG_PATTERN if n % 3 else EvidenceKind.METRIC
        text = (f"pattern {n}: upstream payment-gateway timed out after 2000ms for order {salt}-{n}; "
                + (PLANTED if dense or n % 4 == 0 else "") + "retry budget exhausted; " * 12)
        items.append(Evidence(
            id=evidence_id(kind, f"bench-{salt}-{n}"), kind=kind, source=Source.DATADOG,
            title=f"checkout error pattern {n} (run {salt})", excerpt=text[:580], timestamp=at - timedelta(minutes=n),
            provenance=Provenance(system=Source.DATADOG, tool="bench", request="GET /", fetched_at=scenario.now)))
    return items


def _prompts(scenario: Scenario, count: int, dense: bool) -> list[RenderedPrompt]:
    alert = scenario.alert.to_alert()
    service = next(s for s in scenario.service_entries() if s.name == alert.service)
    return [render_brief_prompt(alert, service, _evidence(scenario, salt, dense), [], budget_tokens=PROMPT_TOKENS)
            for salt in range(count)]


def _validator(sent: dict[str, EvidenceKind]) -> Callable[[Any], list[str]]:
    return lambda brief: brief_problems(brief, sent, "CHK")


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(name: str, values: Sequence[float]) -> str:
    return (f"  {name:<22} p50 {_pct(values, 0.50):8.3f} ms   p95 {_pct(values, 0.95):8.3f} ms   "
            f"mean {statistics.fmean(values):8.3f} ms")


async def _sqlite_store(directory: str) -> GatewayStore:
    from bot.store.db import create_engine_for, migrate, session_factory
    from bot.store.repo import Store

    url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
    await migrate(url)
    return Store(session_factory(create_engine_for(url)))


async def _bench(calls: int, cache_hits: bool, sqlite: bool, dense: bool) -> None:
    scenario = load_scenario(bundled_scenarios_dir() / "checkout-5xx-after-deploy.yaml")
    warmup = 5
    prompts = _prompts(scenario, calls + warmup, dense)
    print(f"prompt: ~{estimate_tokens(prompts[0].system + prompts[0].user)} tokens "
          f"({len(prompts[0].user):,} chars of request, {len(prompts[0].packed.included)} evidence blocks, "
          f"{len(prompts[0].packed.cut)} cut, planted secrets in {'every' if dense else 'one in four'} block), "
          f"redaction on, {calls} calls per path")
    with Sandbox(scenario, systems=["llm"]) as sandbox, tempfile.TemporaryDirectory() as tmp:
        settings = sandbox.settings().llm
        ref = ModelRef.parse(settings.routes["brief"])
        store: GatewayStore = await _sqlite_store(tmp) if sqlite else MemoryGatewayStore()
        unlimited = SpendLimits(per_user_usd_per_day=1e6, per_workspace_usd_per_month=1e9)
        rules = GatewayRules(redact_prompts=True, limits=unlimited, max_model_calls_per_brief=3)
        gateway = Gateway(settings, store=store, audit=MemoryAudit(), rules=rules)
        direct = Agent(build_model(ref, settings), output_type=Brief, instructions=prompts[0].system,
                       retries={"output": 1},
                       model_settings=ModelSettings(max_tokens=settings.max_output_tokens, temperature=0.0))
        caller = Caller(brief_key="bench", user="U-bench", workspace="T-bench")
        direct_ms: list[float] = []
        gateway_ms: list[float] = []
        own_ms: list[float] = []
        stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
        for i, prompt in enumerate(prompts):
            sent = prompt if not cache_hits else prompts[0]
            validate = _validator({cid: EvidenceKind.LOG_PATTERN for cid in sent.packed.included})
            started = time.perf_counter()
            await direct.run(sent.user)
            direct_elapsed = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            result = await gateway.run("brief", sent, Brief, caller=caller,
                                       validate=validate)
            gateway_elapsed = (time.perf_counter() - started) * 1000
            if result.output is None:
                raise RuntimeError(f"gateway call failed: {result.fallback_reason}")
            if i < warmup:
                continue
            direct_ms.append(direct_elapsed)
            gateway_ms.append(gateway_elapsed)
            own_ms.append(sum(result.timings_ms.get(stage, 0.0) for stage in STAGES))
            for stage in STAGES:
                stages[stage].append(result.timings_ms.get(stage, 0.0))
    _report(direct_ms, gateway_ms, own_ms, stages, cache_hits, sqlite)


def _report(direct_ms: list[float], gateway_ms: list[float], own_ms: list[float],
            stages: dict[str, list[float]], cache_hits: bool, sqlite: bool) -> None:
    mode = "cache hits" if cache_hits else "cache misses"
    print(f"end to end ({mode}, {'SQLite store' if sqlite else 'in-memory store and audit'}):")
    print(_row("direct call", direct_ms))
    print(_row("through the gateway", gateway_ms))
    ratio50 = _pct(gateway_ms, 0.5) / _pct(direct_ms, 0.5)
    ratio95 = _pct(gateway_ms, 0.95) / _pct(direct_ms, 0.95)
    print(f"  ratio gateway/direct   p50 {ratio50:6.3f}x        p95 {ratio95:6.3f}x")
    print(f"  difference of p50s     {_pct(gateway_ms, 0.5) - _pct(direct_ms, 0.5):8.3f} ms")
    print("the gateway's own work per call (timed inside it):")
    for stage in STAGES:
        print(_row(stage, stages[stage]))
    print(_row("total own overhead", own_ms))
    p95 = _pct(own_ms, 0.95)
    verdict = "meets" if p95 < TARGET_P95_MS else "misses"
    print(f"target: own overhead p95 < {TARGET_P95_MS:.0f} ms -> {p95:.3f} ms ({verdict})")
    worst = max(STAGES, key=lambda stage: statistics.fmean(stages[stage]))
    print(f"where the time goes: {worst} is the largest stage "
          f"({statistics.fmean(stages[worst]):.3f} ms mean of {statistics.fmean(own_ms):.3f} ms)")


def main(argv: Sequence[str] = ()) -> None:
    args: dict[str, Any] = {"calls": 60, "cache_hits": "--cache-hits" in argv, "sqlite": "--sqlite" in argv,
                            "dense": "--dense" in argv}
    for arg in argv:
        if arg.startswith("--calls="):
            args["calls"] = int(arg.split("=", 1)[1])
    with models.override_allow_model_requests(True):
        asyncio.run(_bench(**args))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
