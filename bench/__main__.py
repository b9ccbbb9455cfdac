"""Run every ``bench_*.py`` module of this package, or only those named on the command line."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def discover() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in Path(__file__).parent.glob("bench_*.py"))


def run(argv: list[str]) -> int:
    names = [arg for arg in argv if not arg.startswith("-")]
    options = [arg for arg in argv if arg.startswith("-")]
    available = discover()
    unknown = sorted(set(names) - set(available))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    for name in names or available:
        print(f"== bench_{name} ==", flush=True)
        module = importlib.import_module(f"bench.bench_{name}")
        module.main(options)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
