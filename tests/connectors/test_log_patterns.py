"""Template mining: variable parts masked, counts split at the alert window, deterministic."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.redaction import redact
from connectors.log_patterns import LogLine, mine

SPLIT = datetime(2026, 5, 12, 14, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return SPLIT + timedelta(minutes=minutes)


def test_variable_parts_are_masked_into_one_pattern() -> None:
    lines = [
        LogLine(f"user {n} login failed from 10.0.{n}.7 session {n:08x}deadbeef "
                f"req 3f2a9c1e-1111-2222-3333-44445555{n:04d} mail u{n}@example.com", "warn", at(n))
        for n in range(6)
    ]
    [pattern] = mine(lines, split_at=SPLIT)
    assert pattern.template == "user <NUM> login failed from <IP> session <HEX> req <UUID> mail <EMAIL>"
    assert pattern.count == 6
    assert pattern.sample == redact(lines[-1].message)  # the most recent line, masked before any clip


def test_counts_split_at_the_window_start() -> None:
    npe = "NullPointerException at PriceCalculator.applyDiscount(PriceCalculator.java:88)"
    pool = "HikariPool-1 - Connection is not available, request timed out after 30000ms"
    lines = [LogLine(npe, "error", at(i / 10)) for i in range(340)]
    lines += [LogLine(pool, "warn", at(m)) for m in (-300, -100, 0)]
    by_sample = {p.sample: p for p in mine(lines, split_at=SPLIT)}
    new, old = by_sample[npe], by_sample[pool]
    assert (new.count, new.count_before, new.is_new) == (340, 0, True)
    assert new.first_seen == at(0)
    assert new.last_seen == at(33.9)
    assert "PriceCalculator" in new.template
    assert (old.count, old.count_before, old.is_new) == (1, 2, False)
    assert old.template == "HikariPool-<NUM> - Connection is not available, request timed out after <NUM>"


def test_most_frequent_first_and_the_worst_status_wins() -> None:
    lines = [LogLine("payment 12 declined", "warn", at(1)), LogLine("payment 13 declined", "error", at(2)),
             LogLine("cache warmed", "warn", at(3))]
    patterns = mine(lines, split_at=SPLIT)
    assert [p.template for p in patterns] == ["payment <NUM> declined", "cache warmed"]
    assert patterns[0].status == "error"


@pytest.mark.parametrize("worst", ["fatal", "emerg", "emergency", "alert", "critical"])
def test_every_error_class_status_outranks_error_and_warn(worst: str) -> None:
    # `fatal` and `emerg` were ranked with `info` (the table's default): an error line spoke for
    # the pattern after a fatal one.
    lines = [LogLine("worker 1 crashed", worst, at(1)), LogLine("worker 2 crashed", "error", at(2)),
             LogLine("worker 3 crashed", "warn", at(3))]
    [pattern] = mine(lines, split_at=SPLIT)
    assert pattern.status == worst


def test_stack_traces_group_by_their_first_line() -> None:
    trace = ("IllegalStateException: cart is empty\n\tat Cart.total(Cart.java:{n})\n"
             "\tat Api.handle(Api.java:9)")
    lines = [LogLine(trace.format(n=n), "error", at(n)) for n in (10, 20, 30)]
    [pattern] = mine(lines, split_at=SPLIT)
    assert pattern.template == "IllegalStateException: cart is empty"
    assert "\tat Cart.total" in pattern.sample  # the raw sample keeps the whole trace


def test_same_lines_same_patterns_whatever_the_order() -> None:
    messages = ["ElasticsearchTimeoutException: query timed out after 2000ms",
                "ElasticsearchTimeoutException: query timed out after 1500ms",
                "slow query for user jane@example.com",
                "Redis command timed out after 1000 ms on 10.1.2.3:6379",
                "retrying batch 7 of 9", "retrying batch 8 of 9"]
    lines = [LogLine(m, "error", at(i % 17 - 8)) for i, m in enumerate(messages * 20)]
    first = mine(lines, split_at=SPLIT)
    shuffled = list(lines)
    random.Random(4).shuffle(shuffled)
    assert mine(shuffled, split_at=SPLIT) == first
    assert sum(p.total for p in first) == len(lines)
    assert len(first) == 4


def test_no_lines_no_patterns() -> None:
    assert mine([], split_at=SPLIT) == []


def test_a_drain3_ini_in_the_working_directory_is_ignored(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ini = '[MASKING]\nmasking = [{"regex_pattern": "login", "mask_with": "X"}]\n'
    (tmp_path / "drain3.ini").write_text(ini)
    monkeypatch.chdir(tmp_path)
    [pattern] = mine([LogLine("login failed 3 times", "warn", at(0))], split_at=SPLIT)
    assert pattern.template == "login failed <NUM> times"
