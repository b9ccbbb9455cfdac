"""The eval suite: each scenario drafted end to end in the sandbox, scored, compared with thresholds.

`pydantic_evals` is the harness: one `Case` per scenario file, one `ScorerEvaluator` per scorer
in `evals.scorers`, and a task that runs `sandbox.harness.run_scenario`. The harness's report
is folded into a `SuiteReport` (per-scenario scores, per-scorer means, thresholds) that the CLI
prints as a table and writes as JSON (shape documented in docs/evals.md).

Exit codes of `main`: 0 every threshold met, 1 a threshold missed, 2 bad input (a scenario or
the thresholds file does not load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EvaluationReason, Evaluator, EvaluatorContext, EvaluatorOutput
from rich.console import Console
from rich.table import Table

from bot.core.models import BriefResult
from evals.scorers import NOT_APPLICABLE, SCORER_NAMES, SCORERS, Score, scorer
from sandbox.scenario import Scenario, ScenarioError, bundled_scenarios_dir, load_scenario

if TYPE_CHECKING:
    from pydantic_evals.reporting import EvaluationReport, ReportCase

    from sandbox.core import RecordedRequest

DEFAULT_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.toml"
DEFAULT_CONCURRENCY = 2  # each scenario runs six sandbox servers; the CI machine has two cores
_EPSILON = 1e-9


class EvalInputError(ValueError):
    """A scenario folder or thresholds file the suite cannot use; the message says which."""


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


# --- thresholds --------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Minimum mean per scorer (over the scenarios where it applies) and how many scenario
    runs may crash."""

    minimums: dict[str, float]
    max_errors: int = 0


def load_thresholds(path: str | Path = DEFAULT_THRESHOLDS) -> Thresholds:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise EvalInputError(f"{path}: not valid TOML: {exc}") from exc
    unknown_tables = sorted(set(raw) - {"scorers", "suite"})
    if unknown_tables:
        raise EvalInputError(f"{path}: unknown table(s) {unknown_tables}; expected [scorers] and [suite]")
    minimums: dict[str, float] = {}
    for name, value in (raw.get("scorers") or {}).items():
        if name not in SCORER_NAMES:
            raise EvalInputError(f"{path}: scorers.{name}: unknown scorer; known: {', '.join(SCORER_NAMES)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise EvalInputError(f"{path}: scorers.{name}: expected a number in [0, 1], got {value!r}")
        minimums[name] = float(value)
    suite = raw.get("suite") or {}
    unknown_keys = sorted(set(suite) - {"max_errors"})
    if unknown_keys:
        raise EvalInputError(f"{path}: suite: unknown key(s) {unknown_keys}")
    max_errors = suite.get("max_errors", 0)
    if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 0:
        raise EvalInputError(f"{path}: suite.max_errors: expected a whole number >= 0, got {max_errors!r}")
    return Thresholds(minimums=minimums, max_errors=max_errors)


# --- the report --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioResult:
    id: str
    title: str
    path: str | None
    scores: dict[str, Score]
    error: str | None = None
    duration_s: float = 0.0
    expects: str = ""  # e.g. "deploy (bad-deploy), gaps: confluence"

    @property
    def passed(self) -> bool:
        return self.error is None and all(s.passed is not False for s in self.scores.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "path": self.path, "expects": self.expects, "passed": self.passed,
            "error": self.error, "duration_s": round(self.duration_s, 3),
            "scores": {name: {"value": s.value, "passed": s.passed, "reason": s.reason}
                       for name, s in self.scores.items()},
        }


@dataclass(frozen=True)
class ScorerSummary:
    name: str
    mean: float | None  # None: the scorer applied to no scenario
    applicable: int
    passed: int
    minimum: float | None

    @property
    def met(self) -> bool:
        if self.minimum is None or self.mean is None:
            return True
        return self.mean >= self.minimum - _EPSILON

    def to_json(self) -> dict[str, Any]:
        return {"mean": None if self.mean is None else round(self.mean, 4), "applicable": self.applicable,
                "passed": self.passed, "min": self.minimum, "met": self.met}


@dataclass(frozen=True)
class SuiteReport:
    drafter: str
    scenarios_dir: str
    scenarios: list[ScenarioResult]
    thresholds: Thresholds
    scorers: list[ScorerSummary] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.scenarios if s.error is not None)

    @property
    def passed(self) -> bool:
        return all(s.met for s in self.scorers) and self.errors <= self.thresholds.max_errors

    def missed(self) -> list[str]:
        """Why the suite failed, one line per missed threshold."""
        out = [f"{s.name}: mean {s.mean:.3f} < min {s.minimum}" for s in self.scorers
               if not s.met and s.mean is not None]
        if self.errors > self.thresholds.max_errors:
            out.append(f"{self.errors} scenario run(s) failed (max_errors = {self.thresholds.max_errors})")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "drafter": self.drafter,
            "scenarios_dir": self.scenarios_dir,
            "passed": self.passed,
            "missed": self.missed(),
            "errors": self.errors,
            "max_errors": self.thresholds.max_errors,
            "scorers": {s.name: s.to_json() for s in self.scorers},
            "scenarios": [s.to_json() for s in self.scenarios],
        }


def summarise(results: Sequence[ScenarioResult], thresholds: Thresholds) -> list[ScorerSummary]:
    out: list[ScorerSummary] = []
    for name in SCORER_NAMES:
        applied = [r.scores[name] for r in results if name in r.scores and r.scores[name].applicable]
        values = [s.numeric for s in applied if s.numeric is not None]
        out.append(ScorerSummary(
            name=name,
            mean=sum(values) / len(values) if values else None,
            applicable=len(values),
            passed=sum(1 for s in applied if s.passed),
            minimum=thresholds.minimums.get(name),
        ))
    return out


# --- running -----------------------------------------------------------------------------


def load_suite(scenarios_dir: str | Path) -> list[Scenario]:
    """Every scenario file in a folder, by file name; any bad file stops the suite."""
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


async def run_suite_async(
    scenarios_dir: str | Path | None = None,
    drafter: str = "offline",
    *,
    thresholds: Thresholds | None = None,
    task: Task | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
) -> SuiteReport:
    folder = Path(scenarios_dir) if scenarios_dir is not None else bundled_scenarios_dir()
    scenarios = load_suite(folder)
    limits = thresholds if thresholds is not None else load_thresholds()
    # `Any` for the output: pydantic-evals validates the type parameters and cannot check a Protocol.
    dataset = Dataset[Scenario, Any, None](
        name="incident-brief",
        cases=[Case(name=s.id, inputs=s) for s in scenarios],
        evaluators=[ScorerEvaluator(name) for name in SCORER_NAMES],
    )
    report = await dataset.evaluate(task or workflow_task(drafter), name=f"incident-brief[{drafter}]",
                                    max_concurrency=max_concurrency, progress=False)
    results = _fold(scenarios, report)
    return SuiteReport(drafter=drafter, scenarios_dir=str(folder), scenarios=results, thresholds=limits,
                       scorers=summarise(results, limits))


def run_suite(scenarios_dir: str | Path | None = None, drafter: str = "offline", *,
              thresholds: Thresholds | None = None, task: Task | None = None,
              max_concurrency: int = DEFAULT_CONCURRENCY) -> SuiteReport:
    """Run every scenario in a folder (the bundled suite by default) and score it."""
    return asyncio.run(run_suite_async(scenarios_dir, drafter, thresholds=thresholds, task=task,
                                       max_concurrency=max_concurrency))


def _fold(scenarios: Sequence[Scenario],
          report: EvaluationReport[Scenario, RunOutput, None]) -> list[ScenarioResult]:
    """The harness's cases and failures back into scenario order, every scorer accounted for."""
    cases = {case.name: case for case in report.cases}
    failures = {failure.name: failure for failure in report.failures}
    out: list[ScenarioResult] = []
    for scenario in scenarios:
        path = str(scenario.path) if scenario.path else None
        if scenario.id in cases:
            case = cases[scenario.id]
            out.append(ScenarioResult(scenario.id, scenario.title, path, _case_scores(scenario, case),
                                      duration_s=case.task_duration, expects=expects_label(scenario)))
            continue
        failure = failures.get(scenario.id)
        error = failure.error_message if failure else "the harness returned no result"
        # A crashed run fails every scorer that would have applied: a crash is not a pass.
        scores = {s.name: Score(False if s.kind == "bool" else 0.0, f"run failed: {error}")
                  if s.applies(scenario) else Score(None, NOT_APPLICABLE) for s in SCORERS}
        out.append(ScenarioResult(scenario.id, scenario.title, path, scores, error=error,
                                  expects=expects_label(scenario)))
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


def render(report: SuiteReport, console: Console) -> None:
    """Two tables a person can read in an 80-column terminal: one row per scenario (what it
    expects, which scorers failed), then one row per scorer against its threshold."""
    per_case = Table(title=f"Eval suite · drafter {report.drafter} · {len(report.scenarios)} scenarios")
    per_case.add_column("scenario", no_wrap=True)
    per_case.add_column("result", justify="center", no_wrap=True)
    per_case.add_column("cause", no_wrap=True)  # the expected kind; the JSON has the full label
    per_case.add_column("failed scorers", min_width=14)
    per_case.add_column("s", justify="right", no_wrap=True)
    for result in report.scenarios:
        verdict = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
        if result.error is not None:
            failed = "[red]run crashed[/red]"
        else:
            failed = ", ".join(n for n, s in result.scores.items() if s.passed is False) or "–"
        cause = result.expects.split(" ", 1)[0].rstrip(",")
        per_case.add_row(result.id, verdict, cause, failed, f"{result.duration_s:.1f}")
    console.print(per_case)

    for result in report.scenarios:
        if result.error is not None:  # one line, not one per scorer: they all failed the same way
            console.print(f"  [red]✘[/red] {result.id}: run failed: {result.error}", highlight=False)
            continue
        for name, score in result.scores.items():
            if score.passed is False:
                console.print(f"  [red]✘[/red] {result.id} · {name}: {score.reason}", highlight=False)

    summary = Table(title="Scorers: mean over the scenarios where each applies")
    for column, justify in (("scorer", "left"), ("mean", "right"), ("passed", "right"),
                            ("min", "right"), ("met", "center")):
        summary.add_column(column, justify=justify)  # type: ignore[arg-type]
    for s in report.scorers:
        mean = "–" if s.mean is None else f"{s.mean:.3f}"
        minimum = "–" if s.minimum is None else f"{s.minimum:g}"
        met = "[green]✔[/green]" if s.met else "[red]✘[/red]"
        summary.add_row(s.name, mean, f"{s.passed}/{s.applicable}", minimum, met)
    console.print(summary)
    if report.passed:
        console.print(f"[green]suite passed[/green]: {len(report.scenarios)} scenarios, every threshold met")
    else:
        console.print("[red]suite failed[/red]: " + "; ".join(report.missed()), highlight=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="incident-brief eval", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=Path, default=bundled_scenarios_dir(), help="folder of scenario files")
    parser.add_argument("--drafter", choices=["offline", "llm"], default="offline")
    parser.add_argument("--json", dest="json_out", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS, help="thresholds TOML")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="scenarios run at once")
    return parser


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    args = _parser().parse_args(argv)
    out = console or Console()
    err = Console(stderr=True)
    if args.concurrency < 1:
        err.print("[red]error:[/red] --concurrency must be at least 1")
        return 2
    try:
        thresholds = load_thresholds(args.thresholds)
        report = run_suite(args.scenarios, args.drafter, thresholds=thresholds, max_concurrency=args.concurrency)
    except EvalInputError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 2
    render(report, out)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
        out.print(f"[dim]JSON report written to {args.json_out}[/dim]")
    return 0 if report.passed else 1

