"""Change-point detection (bot.core.changepoint): a step is found where it starts, noise and spikes are not steps."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.changepoint import detect_level_change


def _series(values: list[float]) -> list[tuple[float, float]]:
    return [(1_700_000_000 + 60 * i, v) for i, v in enumerate(values)]


def _wiggle(base: float, n: int, amplitude: float) -> list[float]:
    return [base * (1 + ((i * 37) % 11 - 5) / 5 * amplitude) for i in range(n)]


def test_a_step_up_is_found_at_its_first_point_with_both_levels() -> None:
    change = detect_level_change(_series(_wiggle(1.0, 30, 0.05) + _wiggle(10.0, 20, 0.05)))
    assert change is not None
    assert change.index == 30
    assert change.at == datetime.fromtimestamp(1_700_000_000 + 60 * 30, UTC)
    assert 0.9 < change.before < 1.1
    assert 9 < change.after < 11
    assert change.ratio is not None
    assert change.ratio > 8


def test_a_step_down_is_found_too() -> None:
    change = detect_level_change(_series(_wiggle(50.0, 25, 0.05) + _wiggle(5.0, 25, 0.05)))
    assert change is not None
    assert change.index == 25
    assert change.after < change.before


def test_noise_small_moves_and_isolated_spikes_are_not_steps() -> None:
    assert detect_level_change(_series(_wiggle(3.0, 60, 0.2))) is None
    assert detect_level_change(_series(_wiggle(100.0, 30, 0.01) + _wiggle(110.0, 30, 0.01))) is None  # only 10%
    spiky = _wiggle(1.0, 60, 0.05)
    spiky[20] = spiky[41] = 40.0
    assert detect_level_change(_series(spiky)) is None


def test_too_short_a_series_has_no_step() -> None:
    assert detect_level_change(_series([1, 1, 1, 9, 9, 9, 9])) is None
