"""`incident-brief eval`'s options (typer, in `bot.app.cli`) to the command line of the suite
(`evals.runner`), the canary compare (`evals.canary`) or the report compare (`evals.compare`)."""

from __future__ import annotations

from pathlib import Path

from evals.canary import main as canary_main
from evals.runner import main


def run_from_cli(*, scenarios: Path, heldout: Path | None, no_heldout: bool, drafter: str, json_out: Path | None,
                 concurrency: int | None, compare: tuple[Path, Path] | None, tolerance: float, canary: bool,
                 candidates: list[str]) -> int:
    """`incident-brief eval`'s options to the suite's, the canary compare's or the report
    compare's command line."""
    if compare is not None:
        return main(["--compare", *map(str, compare), "--tolerance", str(tolerance)])
    argv = ["--scenarios", str(scenarios), "--drafter", drafter]
    argv += ["--json", str(json_out)] if json_out is not None else []
    argv += ["--concurrency", str(concurrency)] if concurrency is not None else []
    if canary or candidates:
        return canary_main([*argv, *(arg for item in candidates for arg in ("--candidate", item))])
    argv += ["--heldout", str(heldout)] if heldout is not None else []
    argv += ["--no-heldout"] if no_heldout else []
    return main(argv)
