"""Benchmarks: each ``bench/bench_*.py`` module exposes ``main(argv) -> None``; ``python -m bench``
runs them all (or those named: ``python -m bench gateway``). They print; they do not assert."""
