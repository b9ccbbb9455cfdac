"""`incident-brief eval --compare BASE.json NEW.json [--tolerance X]`: what changed between two
eval reports (a prompt, model or analyser change), per scorer and per scenario.

A **regression** is, with the tolerance X (default 0):
- a scenario that passed a scorer in BASE and fails it in NEW, its score down by more than X
  (a bool scorer drops by 1, so any X below 1 keeps every pass -> fail);
- a scenario that ran in BASE and crashed in NEW, or that is missing from NEW (a scenario
  removed on purpose means refreshing the baseline, `make eval-baseline`);
- a scorer whose mean over a set fell by more than X (a ratio scorer can lose ground on
  scenarios that were already failing it). Means are taken over the scenarios both reports
  hold, so a scenario added (failing or not) moves no mean.
Scenarios new in NEW and every improvement are listed but never fail the compare. Reports of
version 1 (one set, before the held-out set) read as a development set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.thresholds import SET_NAMES, EvalInputError

Key = tuple[str, str]  # (set, scenario id)


@dataclass(frozen=True)
class LoadedReport:
    path: Path
    drafter: str
    scenarios: dict[Key, dict[str, Any]]


@dataclass
class Comparison:
    base: LoadedReport
    new: LoadedReport
    tolerance: float
    regressions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    added: list[Key] = field(default_factory=list)
    mean_rows: list[tuple[str, str, float, float]] = field(default_factory=list)  # set, scorer, base, new

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


def load_report(path: Path) -> LoadedReport:
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise EvalInputError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("version") not in (1, 2) or not isinstance(raw.get("scenarios"), list):
        raise EvalInputError(f"{path}: not an eval report (expected the JSON of `incident-brief eval --json`)")
    try:
        scenarios = {(str(case.get("set", "dev")), str(case["id"])): case for case in raw["scenarios"]}
        for case in scenarios.values():
            scores = case.get("scores", {})
            if not isinstance(scores, dict) or not all(isinstance(v, dict) for v in scores.values()):
                raise TypeError("scores")
    except (KeyError, TypeError, AttributeError) as exc:
        raise EvalInputError(f"{path}: malformed eval report: missing or wrong {exc}") from exc
    return LoadedReport(path=path, drafter=str(raw.get("drafter", "?")), scenarios=scenarios)


def _value(score: dict[str, Any]) -> float | None:
    value = score.get("value")
    return None if value is None else float(value)


def compare(base: LoadedReport, new: LoadedReport, tolerance: float = 0.0) -> Comparison:
    out = Comparison(base, new, tolerance)
    paired: dict[tuple[str, str], list[tuple[float, float]]] = {}  # (set, scorer) -> values on both sides
    for key, before in base.scenarios.items():
        label = f"{key[0]}/{key[1]}"
        after = new.scenarios.get(key)
        if after is None:
            out.regressions.append(f"{label}: missing from {new.path.name}")
            continue
        if after.get("error") and not before.get("error"):
            out.regressions.append(f"{label}: run crashed: {after['error']}")
            continue
        for name, was in before.get("scores", {}).items():
            now = after.get("scores", {}).get(name)
            old_value, new_value = _value(was), None if now is None else _value(now)
            if old_value is None or new_value is None or now is None:
                continue  # not applicable on one side: the scenario's expectations changed
            paired.setdefault((key[0], name), []).append((old_value, new_value))
            drop = old_value - new_value
            if was.get("passed") and not now.get("passed") and drop > tolerance:
                out.regressions.append(f"{label} · {name}: passed -> failed ({now.get('reason', '')})")
            elif not was.get("passed") and now.get("passed"):
                out.improvements.append(f"{label} · {name}: failed -> passed")
    out.added = sorted(set(new.scenarios) - set(base.scenarios))
    for set_name in _ordered({name for name, _scorer in paired}):
        for (where, scorer), pairs in paired.items():
            if where != set_name:
                continue
            before_mean = sum(b for b, _a in pairs) / len(pairs)
            after_mean = sum(a for _b, a in pairs) / len(pairs)
            out.mean_rows.append((set_name, scorer, before_mean, after_mean))
            if before_mean - after_mean > tolerance:
                out.regressions.append(f"{set_name} · {scorer}: mean {before_mean:.3f} -> {after_mean:.3f} "
                                       f"over {len(pairs)} scenario(s) in both")
    return out


def _ordered(names: set[str]) -> list[str]:
    return [n for n in SET_NAMES if n in names] + sorted(names - set(SET_NAMES))


def render(result: Comparison, console: Console) -> None:
    table = Table(title=f"Eval compare · {result.base.path.name} → {result.new.path.name} "
                        "(means over the scenarios in both)")
    for column, justify in (("set", "left"), ("scorer", "left"), ("base", "right"), ("new", "right"),
                            ("change", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for set_name, scorer, before, after in result.mean_rows:
        change = f"{after - before:+.3f}"
        if before - after > result.tolerance:
            change = f"[red]{change}[/red]"
        table.add_row(set_name, scorer, f"{before:.3f}", f"{after:.3f}", change)
    console.print(table)
    if result.base.drafter != result.new.drafter:
        console.print(f"[yellow]note[/yellow]: drafters differ ({result.base.drafter} vs {result.new.drafter})")
    for line in result.regressions:
        console.print(f"  [red]✘ regression[/red] {line}", highlight=False)
    for line in result.improvements:
        console.print(f"  [green]✔ improved[/green] {line}", highlight=False)
    for set_name, scenario in result.added:
        console.print(f"  [dim]+ new scenario {set_name}/{scenario}[/dim]", highlight=False)
    if result.regressed:
        console.print(f"[red]regression[/red]: {len(result.regressions)} beyond tolerance {result.tolerance:g}",
                      highlight=False)
    else:
        console.print(f"[green]no regression[/green] (tolerance {result.tolerance:g}, "
                      f"{len(result.improvements)} improvement(s))", highlight=False)


def main_compare(base: Path, new: Path, tolerance: float, *, console: Console, err: Console) -> int:
    """0 no regression, 1 a regression beyond the tolerance, 2 a report that does not load."""
    if not 0 <= tolerance < 1:
        err.print(f"[red]error:[/red] --tolerance must be in [0, 1), got {tolerance:g}")
        return 2
    try:
        result = compare(load_report(base), load_report(new), tolerance)
    except EvalInputError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 2
    render(result, console)
    return 1 if result.regressed else 0
