"""The gate's thresholds (`evals/thresholds.toml`): one section per scenario set.

The development set (`evals/scenarios/*.yaml`) and the held-out set
(`evals/scenarios/heldout/*.yaml`) gate separately: the scenarios that inspired a change to
the analyser are not enough to judge it, so the held-out set has bars of its own (the issue's
done-when figures), set apart from the hand-checked development bars.

```toml
[dev.scorers]        # minimum mean per scorer over the scenarios where it applies, in [0, 1]
cause_kind_correct = 1.0
[dev.suite]
max_errors = 0       # how many scenario runs may crash
[heldout.scorers]
cause_correct = 0.85
[heldout.suite]
max_errors = 0
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.scorers import SCORER_NAMES

DEFAULT_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.toml"
# The LLM path gates the guarantees any model must keep, not the simulated model's answers.
LLM_THRESHOLDS = Path(__file__).resolve().parent / "thresholds-llm.toml"


def default_thresholds(drafter: str) -> Path:
    return LLM_THRESHOLDS if drafter == "llm" else DEFAULT_THRESHOLDS
SET_NAMES = ("dev", "heldout")  # in the order they are run, printed and reported
SET_TITLES = {"dev": "development set", "heldout": "held-out set"}


class EvalInputError(ValueError):
    """A scenario folder, thresholds file or report the suite cannot use; the message says which."""


@dataclass(frozen=True)
class Thresholds:
    """Minimum mean per scorer (over the scenarios where it applies) and how many scenario
    runs may crash, for one set."""

    minimums: dict[str, float]
    max_errors: int = 0


@dataclass(frozen=True)
class GateThresholds:
    """Every set's thresholds, by set name."""

    sets: dict[str, Thresholds] = field(default_factory=dict)

    def for_set(self, name: str) -> Thresholds:
        # A set with no section gates on nothing but crashes: reported, never silently passed.
        return self.sets.get(name, Thresholds(minimums={}, max_errors=0))


def load_thresholds(path: str | Path = DEFAULT_THRESHOLDS) -> GateThresholds:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise EvalInputError(f"{path}: not valid TOML: {exc}") from exc
    unknown_sets = sorted(set(raw) - set(SET_NAMES))
    if unknown_sets:
        raise EvalInputError(f"{path}: unknown table(s) {unknown_sets}; expected "
                             + " and ".join(f"[{name}]" for name in SET_NAMES))
    return GateThresholds({name: _set(path, name, raw[name]) for name in SET_NAMES if name in raw})


def _set(path: Path, name: str, raw: Any) -> Thresholds:
    if not isinstance(raw, dict):
        raise EvalInputError(f"{path}: {name}: expected a table with [{name}.scorers] and [{name}.suite]")
    unknown_tables = sorted(set(raw) - {"scorers", "suite"})
    if unknown_tables:
        raise EvalInputError(f"{path}: {name}: unknown table(s) {unknown_tables}; "
                             f"expected [{name}.scorers] and [{name}.suite]")
    minimums: dict[str, float] = {}
    for scorer, value in (raw.get("scorers") or {}).items():
        where = f"{name}.scorers.{scorer}"
        if scorer not in SCORER_NAMES:
            raise EvalInputError(f"{path}: {where}: unknown scorer; known: {', '.join(SCORER_NAMES)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise EvalInputError(f"{path}: {where}: expected a number in [0, 1], got {value!r}")
        minimums[scorer] = float(value)
    suite = raw.get("suite") or {}
    unknown_keys = sorted(set(suite) - {"max_errors"})
    if unknown_keys:
        raise EvalInputError(f"{path}: {name}.suite: unknown key(s) {unknown_keys}")
    max_errors = suite.get("max_errors", 0)
    if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 0:
        raise EvalInputError(f"{path}: {name}.suite.max_errors: expected a whole number >= 0, got {max_errors!r}")
    return Thresholds(minimums=minimums, max_errors=max_errors)
