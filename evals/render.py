"""The eval report for a person, in an 80-column terminal: per set, one row per scenario
(what it expects, which scorers failed), the reasons of each failure, one row per scorer
against the set's threshold; then the gate's verdict over every set."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from evals.report import SIMULATED, EvalReport, SuiteReport


def render(report: EvalReport, console: Console) -> None:
    for suite in report.sets:
        render_set(suite, console)
    if report.simulated_model:
        console.print(f"[yellow]{SIMULATED}[/yellow]", highlight=False)
    sets = ", ".join(f"{s.title} {len(s.scenarios)}" for s in report.sets)
    timing = f" in {report.elapsed_s:.0f} s" if report.elapsed_s else ""
    if report.passed:
        console.print(f"[green]gate passed[/green]: {report.scenario_count} scenarios ({sets}){timing}, "
                      "every threshold met", highlight=False)
    else:
        console.print(f"[red]gate failed[/red]: {report.scenario_count} scenarios ({sets}){timing}; "
                      + "; ".join(report.missed()), highlight=False)


def render_set(report: SuiteReport, console: Console) -> None:
    per_case = Table(title=f"{report.title.capitalize()} · drafter {report.drafter} · "
                           f"{len(report.scenarios)} scenarios")
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

    summary = Table(title=f"{report.title.capitalize()}: scorer means where each applies")
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
        console.print(f"[green]{report.title} passed[/green]: {len(report.scenarios)} scenarios, "
                      "every threshold met")
    else:
        console.print(f"[red]{report.title} failed[/red]: " + "; ".join(report.missed()), highlight=False)
