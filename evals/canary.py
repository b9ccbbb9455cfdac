"""`incident-brief eval --drafter llm --canary`: the suite on the baseline routes, then on each
route's canary candidate, side by side.

Scores come from the same scorers and thresholds as the gate; the model measures (validation
failures, fallbacks, latency, cost) from each run's own audit trail, as the canary watch
computes them in production. The sandbox's model is SIMULATED: it answers from the prompt's
evidence blocks, whatever the model name, so these numbers show how the bot handles each
model's answers, never the quality of a real model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.core.config import LlmSettings
from evals.report import SIMULATED
from evals.runner import (
    EvalInputError,
    RunOutput,
    SuiteReport,
    Task,
    Thresholds,
    load_thresholds,
    run_suite_async,
)
from evals.runner import _parser as suite_parser
from evals.thresholds import LLM_THRESHOLDS
from sandbox.scenario import Scenario

_NOT_MADE = ("cache_hit", "budget", "step_cap")


class CanaryInputError(ValueError):
    """No candidate to compare, or a candidate that cannot be used."""


def candidates(llm: LlmSettings, given: list[str]) -> dict[str, str]:
    """Route -> candidate model: ``--candidate brief=openai:…@…`` wins over ``llm.canary.routes``."""
    chosen = {route: canary.model for route, canary in llm.canary.routes.items()}
    for item in given:
        route, sep, model = item.partition("=")
        if not sep or not model:
            raise CanaryInputError(f"--candidate {item!r}: expected ROUTE=provider:model@version")
        chosen[route] = model
    if not chosen:
        raise CanaryInputError("no canary to compare: configure IB_LLM__CANARY__ROUTES or pass "
                               "--candidate ROUTE=provider:model@version")
    unknown = sorted(set(chosen) - set(llm.routes))
    if unknown:
        raise CanaryInputError(f"--candidate: unknown route(s) {', '.join(unknown)}; routes: {', '.join(llm.routes)}")
    return chosen


@dataclass
class SideMeasures:
    scenarios: int = 0
    requests: int = 0
    validation_failures: int = 0
    fallbacks: int = 0  # briefs drafted offline after the model path failed
    latency_ms: float = 0.0
    cost_usd: float = 0.0

    def add(self, run: Any) -> None:
        self.scenarios += 1
        made = [call for call in run.audit.model_calls if call.outcome not in _NOT_MADE]
        self.requests += len(made)
        self.validation_failures += sum(1 for call in made if call.outcome == "schema_error")
        self.latency_ms += sum(call.latency_ms for call in made)
        self.cost_usd += sum(call.cost_usd for call in run.audit.model_calls)
        self.fallbacks += int(run.result.brief.draft.drafter == "offline")

    def row(self) -> list[str]:
        rate = self.validation_failures / self.requests if self.requests else 0.0
        return [f"{rate:.0%} of {self.requests}", f"{self.fallbacks}/{self.scenarios}",
                f"{self.latency_ms / self.requests:.0f} ms" if self.requests else "–",
                f"${self.cost_usd / self.scenarios:.4f}" if self.scenarios else "–"]

    def to_json(self) -> dict[str, Any]:
        return {"scenarios": self.scenarios, "requests": self.requests,
                "validation_failures": self.validation_failures, "fallbacks": self.fallbacks,
                "mean_latency_ms": round(self.latency_ms / self.requests, 3) if self.requests else None,
                "cost_per_brief_usd": round(self.cost_usd / self.scenarios, 6) if self.scenarios else None}


@dataclass
class CanaryCompare:
    candidates: dict[str, str]
    baseline: SuiteReport
    canary: SuiteReport
    baseline_measures: SideMeasures
    canary_measures: SideMeasures

    @property
    def passed(self) -> bool:
        return self.baseline.passed and self.canary.passed

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "simulated_model": True, "note": SIMULATED, "candidates": self.candidates,
                "passed": self.passed, "baseline": self.baseline.to_json(), "canary": self.canary.to_json(),
                "model_measures": {"baseline": self.baseline_measures.to_json(),
                                   "canary": self.canary_measures.to_json()}}


def _measured_task(llm_update: dict[str, Any] | None, measures: SideMeasures) -> Task:
    async def run(scenario: Scenario) -> RunOutput:
        from sandbox.harness import run_scenario

        result = await run_scenario(scenario, drafter="llm", llm_update=llm_update)
        measures.add(result)
        return result

    return run


async def compare(scenarios_dir: Path, llm: LlmSettings, chosen: dict[str, str], *, thresholds: Thresholds,
                  max_concurrency: int) -> CanaryCompare:
    """The suite twice: the configured routes, then each route sent to its candidate (priced
    from `llm.prices`, as the gateway requires of any routed model)."""
    sides = []
    for update in (None, {"routes": {**llm.routes, **chosen}, "prices": llm.prices}):
        measures = SideMeasures()
        report = await run_suite_async(scenarios_dir, "llm", thresholds=thresholds,
                                       task=_measured_task(update, measures), max_concurrency=max_concurrency)
        sides.append((report, measures))
    (baseline, base_measures), (canary, canary_measures) = sides
    return CanaryCompare(chosen, baseline, canary, base_measures, canary_measures)


def render(result: CanaryCompare, console: Console) -> None:
    routes = ", ".join(f"{route} → {model}" for route, model in result.candidates.items())
    table = Table(title=f"Eval suite · baseline vs canary ({routes})")
    for column, justify in (("measure", "left"), ("baseline", "right"), ("canary", "right"), ("min", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    canary_by_name = {s.name: s for s in result.canary.scorers}
    for base in result.baseline.scorers:
        other = canary_by_name[base.name]

        def shown(mean: float | None, met: bool) -> str:
            return "–" if mean is None else (f"{mean:.3f}" if met else f"[red]{mean:.3f}[/red]")

        table.add_row(base.name, shown(base.mean, base.met), shown(other.mean, other.met),
                      "–" if base.minimum is None else f"{base.minimum:g}")
    for name, base_value, canary_value in zip(
            ("validation failures", "fallbacks to offline", "mean model latency", "cost per brief"),
            result.baseline_measures.row(), result.canary_measures.row(), strict=True):
        table.add_row(name, base_value, canary_value, "")
    console.print(table)
    console.print(f"[yellow]{SIMULATED}[/yellow]")
    for side, report in (("baseline", result.baseline), ("canary", result.canary)):
        if not report.passed:
            console.print(f"[red]{side} failed[/red]: " + "; ".join(report.missed()), highlight=False)
    if result.passed:
        console.print("[green]both sides meet every threshold[/green]")


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    """Exit codes as the suite's: 0 both sides meet every threshold, 1 one misses, 2 bad input."""
    parser = suite_parser()
    parser.prog = "incident-brief eval --canary"
    parser.add_argument("--candidate", action="append", default=[], metavar="ROUTE=MODEL",
                        help="a candidate model (else llm.canary.routes from the environment)")
    args = parser.parse_args(argv)
    out = console or Console()
    err = Console(stderr=True)
    if args.drafter != "llm":
        err.print("[red]error:[/red] --canary compares models: use it with --drafter llm")
        return 2
    if args.concurrency < 1:
        err.print("[red]error:[/red] --concurrency must be at least 1")
        return 2
    try:
        from bot.core.config import Settings

        thresholds = load_thresholds(args.thresholds or LLM_THRESHOLDS).for_set("dev")
        llm = Settings().llm
        chosen = candidates(llm, args.candidate)
        result = asyncio.run(compare(args.scenarios, llm, chosen, thresholds=thresholds,
                                     max_concurrency=args.concurrency))
    except (EvalInputError, CanaryInputError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 2
    render(result, out)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    return 0 if result.passed else 1
