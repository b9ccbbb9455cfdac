"""The eval report: per scenario, per scorer and per set, with the gate's verdict.

`SuiteReport` is one scenario set (the development set or the held-out set) against its own
thresholds; `EvalReport` is a whole run, every set, and what `--json` writes (version 2, shape
in docs/evals.md). A run through the LLM drafter says plainly that the sandbox model is
simulated.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.scorers import SCORER_NAMES, Score
from evals.thresholds import SET_TITLES, Thresholds

REPORT_VERSION = 2
SIMULATED = ("The sandbox model is simulated: these figures show how the bot handles the answers of a model, "
             "not how good a real model is.")
_EPSILON = 1e-9


def shown_path(path: str | Path | None) -> str | None:
    """A path relative to the working directory when it lies under it, so a committed report
    (the CI baseline) does not carry one machine's checkout path."""
    if path is None:
        return None
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path(os.getcwd()).resolve()))
    except ValueError:
        return str(absolute)


@dataclass(frozen=True)
class ScenarioResult:
    id: str
    title: str
    path: str | None
    scores: dict[str, Score]
    error: str | None = None
    duration_s: float = 0.0
    expects: str = ""  # e.g. "deploy (bad-deploy), gaps: confluence"
    set_name: str = "dev"

    @property
    def passed(self) -> bool:
        return self.error is None and all(s.passed is not False for s in self.scores.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "set": self.set_name, "title": self.title, "path": shown_path(self.path),
            "expects": self.expects, "passed": self.passed, "error": self.error,
            "duration_s": round(self.duration_s, 3),
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


@dataclass(frozen=True)
class SuiteReport:
    """One scenario set, scored against its own thresholds."""

    drafter: str
    scenarios_dir: str
    scenarios: list[ScenarioResult]
    thresholds: Thresholds
    scorers: list[ScorerSummary] = field(default_factory=list)
    name: str = "dev"

    @property
    def title(self) -> str:
        return SET_TITLES.get(self.name, self.name)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.scenarios if s.error is not None)

    @property
    def passed(self) -> bool:
        return all(s.met for s in self.scorers) and self.errors <= self.thresholds.max_errors

    def missed(self) -> list[str]:
        """Why the set failed, one line per missed threshold."""
        out = [f"{s.name}: mean {s.mean:.3f} < min {s.minimum}" for s in self.scorers
               if not s.met and s.mean is not None]
        if self.errors > self.thresholds.max_errors:
            out.append(f"{self.errors} scenario run(s) failed (max_errors = {self.thresholds.max_errors})")
        return out

    def summary_json(self) -> dict[str, Any]:
        return {"scenarios_dir": shown_path(self.scenarios_dir), "scenarios": len(self.scenarios),
                "passed": self.passed, "missed": self.missed(), "errors": self.errors,
                "max_errors": self.thresholds.max_errors,
                "scorers": {s.name: s.to_json() for s in self.scorers}}

    def to_json(self) -> dict[str, Any]:
        """One set on its own (the canary compare's shape): the summary and its scenarios."""
        return {"version": REPORT_VERSION, "drafter": self.drafter, "set": self.name, **self.summary_json(),
                "scenarios": [s.to_json() for s in self.scenarios]}


@dataclass(frozen=True)
class EvalReport:
    """A whole run: every set, in order; the gate passes when every set does."""

    drafter: str
    sets: list[SuiteReport]
    elapsed_s: float = 0.0

    @property
    def simulated_model(self) -> bool:
        return self.drafter == "llm"

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.sets)

    @property
    def scenario_count(self) -> int:
        return sum(len(s.scenarios) for s in self.sets)

    def missed(self) -> list[str]:
        return [f"{s.name}: {line}" for s in self.sets for line in s.missed()]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": REPORT_VERSION, "drafter": self.drafter,
                               "simulated_model": self.simulated_model}
        if self.simulated_model:
            out["note"] = SIMULATED
        out |= {"passed": self.passed, "missed": self.missed(),
                "errors": sum(s.errors for s in self.sets), "elapsed_s": round(self.elapsed_s, 1),
                "sets": {s.name: s.summary_json() for s in self.sets},
                "scenarios": [r.to_json() for s in self.sets for r in s.scenarios]}
        return out
