"""Redaction cost on the hot path: clean evidence, evidence with a few planted values, and text
dense with secrets, at the size of a packed prompt (about 12,500 characters, 3,000 tokens) and of
one log line (about 180 characters).

The text is the bundled scenarios' own strings (log messages, events, runbooks), so the detectors
see what they see in production-like evidence. Budget: 5 ms per 12.5k characters (the gateway's
whole overhead budget; see docs/redaction.md). Medians of several rounds.

    uv run python -m bench redaction [--rounds=N]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial

import yaml

from bot.core.redaction import find, redact
from bot.core.redaction.second_opinion import second_opinion
from evals.scorers import json_strings
from sandbox.scenario import bundled_scenarios_dir

PROMPT_CHARS = 12_500
LINE = "2026-06-03T08:12:04Z search-api WARN slow query for user jane.doe@example.com took 2300 ms (p99 480 ms)"
BUDGET_MS = 5.0
DIRTY = ("user jane@example.com from 10.0.0.1 token=sk-live-abcdefgh12345678 card 4111 1111 1111 1111 "
         "call +1 415 555 0132 ")


def _scenario_text() -> str:
    texts = [s for path in sorted(bundled_scenarios_dir().glob("*.yaml"))
             for s in json_strings(yaml.safe_load(path.read_text()), keys=False)]
    blob = "\n".join(texts)
    while len(blob) < PROMPT_CHARS:
        blob += "\n" + blob
    return blob[:PROMPT_CHARS]


def _median_ms(work: Callable[[], object], repeat: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            work()
        samples.append((time.perf_counter() - started) / repeat * 1000)
    return statistics.median(samples)


def main(options: list[str] | None = None) -> None:
    rounds = 5
    for option in options or []:
        if option.startswith("--rounds="):
            rounds = int(option.split("=", 1)[1])
    evidence = _scenario_text()
    clean = redact(evidence)  # the same text with its planted values already masked
    dirty = (DIRTY * (PROMPT_CHARS // len(DIRTY) + 1))[:PROMPT_CHARS]
    cases = [
        ("12.5k chars, clean evidence", clean, 50),
        ("12.5k chars, scenario evidence (planted values)", evidence, 50),
        (f"12.5k chars, dense secrets ({len(find(dirty))} findings)", dirty, 10),
        ("one 180-char log line with an email", LINE, 2000),
    ]
    print(f"{rounds} rounds, medians; budget {BUDGET_MS:.1f} ms per 12.5k characters of evidence")
    for label, text, repeat in cases:
        ms = _median_ms(partial(redact, text), repeat, rounds)
        unit = f"{ms * 1000:8.1f} us" if ms < 0.1 else f"{ms:8.2f} ms"
        print(f"  {label:<52} {unit}")
    # The second opinion (detect-secrets' plugins) runs inside `redact`; its share of the time,
    # measured in the same run on the same text, is the price of the maintained pattern set.
    for label, text, repeat in cases[:2]:
        whole = _median_ms(partial(redact, text), repeat, rounds)
        second = _median_ms(partial(second_opinion, text), repeat, rounds)
        print(f"  second opinion, {label:<36} {second:6.2f} ms of {whole:.2f} ms ({second / whole:.0%}; "
              f"own patterns {whole - second:.2f} ms, ratio whole/own {whole / max(whole - second, 1e-9):.2f}x)")
