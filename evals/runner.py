"""The eval suite: each scenario drafted end to end in the sandbox, scored, compared with thresholds.

Two scenario sets run together: the development set (`evals/scenarios/*.yaml`) and the
held-out set (`evals/scenarios/heldout/*.yaml`, which nobody tunes against); each is gated by
its own section of `evals/thresholds.toml`. `pydantic_evals` is the harness: one `Case` per
scenario file, one `ScorerEvaluator` per scorer in `evals.scorers`, and a task that runs
`sandbox.harness.run_scenario`. The harness's report is folded into an `EvalReport` (per set:
per-scenario scores, per-scorer means, thresholds) that the CLI prints (`evals.render`) and
writes as JSON (shape documented in docs/evals.md).

Exit codes of `main`: 0 every threshold met (or, with ``--compare``, no regression), 1 a
threshold missed (a regression), 2 bad input (a scenario, the thresholds file or a report does
not load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EvaluationReason, Evaluator, EvaluatorContext, EvaluatorOutput
from rich.console import Console

from bot.core.models import BriefResult
from evals.report import EvalReport, ScenarioResult, SuiteReport, summarise
from evals.scorers import NOT_APPLICABLE, SCORER_NAMES, SCORERS, Score, scorer
from evals.thresholds import (
    DEFAULT_THRESHOLDS,
    EvalInputError,
    GateThresholds,
    Thresholds,
    default_thresholds,
    load_thresholds,
)
from sandbox.scenario import Scenario, ScenarioError, bundled_scenarios_dir, load_scenario

if TYPE_CHECKING:
    from pydantic_evals.reporting import EvaluationReport, ReportCase

    from sandbox.core import RecordedRequest

__all__ = ["DEFAULT_THRESHOLDS", "EvalInputError", "EvalReport", "GateThresholds", "SuiteReport",
           "Thresholds", "load_suite", "load_thresholds", "main", "run_eval", "run_suite"]

# Each scenario starts its own sandbox servers. On the 2-core CI machine two at once was as
# fast as four and faster than six (18 scenarios: 21 s, 24 s, 34 s; docs/evals.md).
DEFAULT_CONCURRENCY = 2
HELDOUT_FOLDER = "heldout"


class RunOutput(Protocol):
    """What the task returns for one scenario (`sandbox.harness.ScenarioRun` fits)."""

    result: BriefResult
    writes: list[RecordedRequest]


Task = Callable[[Scenario], Awaitable[RunOutput]]


@dataclass
class ScorerEvaluator(Evaluator[Scenario, RunOutput, None]):
    """One scorer as a pydantic_evals evaluator: bool -> assertion, float -> score, and no
    result at all when the scorer does not apply to the scenario."""

    scorer_name: str

    def get_default_evaluation_name(self) -> str:
        return self.scorer_name

    def evaluate(self, ctx: EvaluatorContext[Scenario, RunOutput, None]) -> EvaluatorOutput:
        score = scorer(self.scorer_name).score(ctx.inputs, ctx.output.result, ctx.output.writes)
        if score.value is None:
            return {}
        return EvaluationReason(value=score.value, reason=score.reason)


# --- loading -----------------------------------------------------------------------------


def load_suite(scenarios_dir: str | Path) -> list[Scenario]:
    """Every scenario file in a folder (not its subfolders), by file name; any bad file stops
    the suite."""
    folder = Path(scenarios_dir)
    if not folder.is_dir():
        raise EvalInputError(f"{folder}: not a folder of scenarios")
    paths = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not paths:
        raise EvalInputError(f"{folder}: no *.yaml scenario files")
    scenarios: list[Scenario] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            raise EvalInputError(str(exc)) from exc
        if scenario.id in seen:
            raise EvalInputError(f"{path}: id {scenario.id!r} is already used by {seen[scenario.id]}")
        seen[scenario.id] = path
        scenarios.append(scenario)
    return scenarios


def default_heldout(scenarios_dir: Path) -> Path | None:
    """The held-out set lives beside the development set, in its `heldout/` subfolder."""
    folder = scenarios_dir / HELDOUT_FOLDER
    return folder if folder.is_dir() else None


def workflow_task(drafter: str) -> Task:
    """The real task: one scenario through the whole workflow against its sandbox."""
    if drafter not in ("offline", "llm"):
        raise EvalInputError(f"unknown drafter {drafter!r}: expected 'offline' or 'llm'")
    choice: Literal["offline", "llm"] = "llm" if drafter == "llm" else "offline"

    async def run(scenario: Scenario) -> RunOutput:
        from sandbox.harness import run_scenario  # the harness pulls in every connector

        return await run_scenario(scenario, drafter=choice)

    run.__name__ = f"run_scenario[{drafter}]"
    return run


# --- running -----------------------------------------------------------------------------


async def run_eval_async(
    sets: Sequence[tuple[str, str | Path]],
    drafter: str = "offline",
    *,
    thresholds: GateThresholds | None = None,
    task: Task | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
) -> EvalReport:
    """Every set's scenarios in one harness run (one queue keeps both cores busy to the end),
    then folded back per set and gated by each set's thresholds."""
    limits = thresholds if thresholds is not None else load_thresholds()
    loaded: list[tuple[str, Path, list[Scenario]]] = []
    owner: dict[str, str] = {}
    for name, folder in sets:
        scenarios = load_suite(folder)
        for scenario in scenarios:
            if scenario.id in owner:  # a held-out scenario copied into the dev set is no longer held out
                raise EvalInputError(f"{scenario.path}: id {scenario.id!r} is also in the {owner[scenario.id]} set")
            owner[scenario.id] = name
        loaded.append((name, Path(folder), scenarios))
    started = time.perf_counter()
    # `Any` for the output: pydantic-evals validates the type parameters and cannot check a Protocol.
    dataset = Dataset[Scenario, Any, None](
        name="incident-brief",
        cases=[Case(name=s.id, inputs=s) for _name, _folder, scenarios in loaded for s in scenarios],
        evaluators=[ScorerEvaluator(name) for name in SCORER_NAMES],
    )
    report = await dataset.evaluate(task or workflow_task(drafter), name=f"incident-brief[{drafter}]",
                                    max_concurrency=max_concurrency, progress=False)
    elapsed = time.perf_counter() - started
    reports = []
    for name, folder, scenarios in loaded:
        results = _fold(scenarios, report, name)
        limit = limits.for_set(name)
        reports.append(SuiteReport(drafter=drafter, scenarios_dir=str(folder), scenarios=results,
                                   thresholds=limit, scorers=summarise(results, limit), name=name))
    return EvalReport(drafter=drafter, sets=reports, elapsed_s=elapsed)


def run_eval(sets: Sequence[tuple[str, str | Path]], drafter: str = "offline", *,
             thresholds: GateThresholds | None = None, task: Task | None = None,
             max_concurrency: int = DEFAULT_CONCURRENCY) -> EvalReport:
    return asyncio.run(run_eval_async(sets, drafter, thresholds=thresholds, task=task,
                                      max_concurrency=max_concurrency))


async def run_suite_async(
    scenarios_dir: str | Path | None = None,
    drafter: str = "offline",
    *,
    thresholds: Thresholds | None = None,
    task: Task | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
) -> SuiteReport:
    """One folder as the development set (the canary compare and the tests use it)."""
    folder = Path(scenarios_dir) if scenarios_dir is not None else bundled_scenarios_dir()
    limit = thresholds if thresholds is not None else load_thresholds().for_set("dev")
    report = await run_eval_async([("dev", folder)], drafter, thresholds=GateThresholds({"dev": limit}),
                                  task=task, max_concurrency=max_concurrency)
    return report.sets[0]


def run_suite(scenarios_dir: str | Path | None = None, drafter: str = "offline", *,
              thresholds: Thresholds | None = None, task: Task | None = None,
              max_concurrency: int = DEFAULT_CONCURRENCY) -> SuiteReport:
    """Run every scenario in one folder (the bundled development set by default) and score it."""
    return asyncio.run(run_suite_async(scenarios_dir, drafter, thresholds=thresholds, task=task,
                                       max_concurrency=max_concurrency))


def _fold(scenarios: Sequence[Scenario], report: EvaluationReport[Scenario, RunOutput, None],
          set_name: str) -> list[ScenarioResult]:
    """The harness's cases and failures back into scenario order, every scorer accounted for."""
    cases = {case.name: case for case in report.cases}
    failures = {failure.name: failure for failure in report.failures}
    out: list[ScenarioResult] = []
    for scenario in scenarios:
        path = str(scenario.path) if scenario.path else None
        if scenario.id in cases:
            case = cases[scenario.id]
            out.append(ScenarioResult(scenario.id, scenario.title, path, _case_scores(scenario, case),
                                      duration_s=case.task_duration, expects=expects_label(scenario),
                                      set_name=set_name))
            continue
        failure = failures.get(scenario.id)
        error = failure.error_message if failure else "the harness returned no result"
        # A crashed run fails every scorer that would have applied: a crash is not a pass.
        scores = {s.name: Score(False if s.kind == "bool" else 0.0, f"run failed: {error}")
                  if s.applies(scenario) else Score(None, NOT_APPLICABLE) for s in SCORERS}
        out.append(ScenarioResult(scenario.id, scenario.title, path, scores, error=error,
                                  expects=expects_label(scenario), set_name=set_name))
    return out


def expects_label(scenario: Scenario) -> str:
    """The scenario's expectation in a few words, for the table."""
    cause = scenario.expect.cause
    label = cause.kind + (f" ({cause.item})" if cause.item else "")
    if scenario.expect.gaps:
        label += ", gaps: " + " ".join(scenario.expect.gaps)
    return label


def _case_scores(scenario: Scenario, case: ReportCase[Scenario, RunOutput, None]) -> dict[str, Score]:
    broken = {f.name: f.error_message for f in case.evaluator_failures}
    scores: dict[str, Score] = {}
    for s in SCORERS:
        if s.name in case.assertions:
            result = case.assertions[s.name]
            scores[s.name] = Score(bool(result.value), result.reason or "")
        elif s.name in case.scores:
            numeric = case.scores[s.name]
            scores[s.name] = Score(float(numeric.value), numeric.reason or "")
        elif s.name in broken:
            scores[s.name] = Score(False if s.kind == "bool" else 0.0, f"scorer failed: {broken[s.name]}")
        else:
            scores[s.name] = Score(None, NOT_APPLICABLE)
    return scores


# --- the command line --------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="incident-brief eval", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=Path, default=bundled_scenarios_dir(),
                        help="folder of the development set's scenario files")
    parser.add_argument("--heldout", type=Path, default=None,
                        help="folder of the held-out set (default: the heldout/ subfolder of --scenarios)")
    parser.add_argument("--no-heldout", action="store_true", help="run the development set only")
    parser.add_argument("--drafter", choices=["offline", "llm"], default="offline")
    parser.add_argument("--json", dest="json_out", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--thresholds", type=Path, default=None,
                        help="thresholds TOML (default: evals/thresholds.toml, thresholds-llm.toml for --drafter llm)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="scenarios run at once")
    parser.add_argument("--compare", nargs=2, type=Path, default=None, metavar=("BASE", "NEW"),
                        help="compare two JSON reports instead of running the suite")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="with --compare: the largest drop of a score that is not a regression")
    return parser


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    from evals.render import render  # the tables are only needed here

    args = _parser().parse_args(argv)
    out = console or Console()
    err = Console(stderr=True)
    if args.compare is not None:
        from evals.compare import main_compare

        return main_compare(args.compare[0], args.compare[1], args.tolerance, console=out, err=err)
    if args.concurrency < 1:
        err.print("[red]error:[/red] --concurrency must be at least 1")
        return 2
    sets: list[tuple[str, str | Path]] = [("dev", args.scenarios)]
    heldout = None if args.no_heldout else (args.heldout or default_heldout(args.scenarios))
    if heldout is not None:
        sets.append(("heldout", heldout))
    try:
        thresholds = load_thresholds(args.thresholds or default_thresholds(args.drafter))
        report = run_eval(sets, args.drafter, thresholds=thresholds, max_concurrency=args.concurrency)
    except EvalInputError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 2
    render(report, out)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
        out.print(f"[dim]JSON report written to {args.json_out}[/dim]")
    return 0 if report.passed else 1

