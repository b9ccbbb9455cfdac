"""Canary model upgrades: a candidate model drafts a share of incidents, and is switched off
when it does worse than the baseline.

Which side an incident is on (`arm_for`) is a hash of the route and the incident key: one
incident always gets the same model, every replica agrees, and no state is needed to decide.
A canary brief tries the candidate first and falls back to the baseline route's model, so a
failing candidate costs a fallback, not a brief. Whether a candidate is still live is the
store's (`CanaryStates`): the clock's canary watch switches a worse one off there, and every
replica reads it before its next canary brief.

`judge` is the comparison itself, pure: per arm, the share of model requests that failed
validation, the share of briefs that fell back, the mean request latency, the cost per brief
and the share of voted briefs voted down, over the same window.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.core.config import CanarySettings
from bot.store.canary import ArmStats

Arm = Literal["baseline", "canary"]
_SCALE = float(2**64)


def arm_for(incident_key: str | None, route: str, share: float) -> Arm:
    """Deterministic by incident: the first 8 bytes of sha256(route:key) as a fraction of 2^64."""
    if incident_key is None or share <= 0.0:
        return "baseline"
    digest = hashlib.sha256(f"{route}:{incident_key}".encode()).digest()
    return "canary" if int.from_bytes(digest[:8], "big") / _SCALE < share else "baseline"


class CanaryStates(Protocol):
    """Which candidates were switched off (`bot.store.canary.CanaryStore` in production)."""


    async def switched_off(self, route: str, model: str) -> bool: ...


class MemoryCanaryStates:
    def __init__(self) -> None:
        self.off: set[tuple[str, str]] = set()

    async def switched_off(self, route: str, model: str) -> bool:
        return (route, model) in self.off


@dataclass(frozen=True)
class Verdict:
    route: str
    baseline: ArmStats
    canary: ArmStats
    worse: list[str] = field(default_factory=list)  # one line per measure the canary lost on
    enough_data: bool = True

    @property
    def switch_off(self) -> bool:
        return self.enough_data and bool(self.worse)

    def summary(self) -> str:
        if not self.enough_data:
            return (f"{self.route}: not enough briefs yet ({self.canary.briefs} canary, "
                    f"{self.baseline.briefs} baseline)")
        if not self.worse:
            return f"{self.route}: canary {self.canary.model} is within the margins"
        return f"{self.route}: canary {self.canary.model} is worse: " + "; ".join(self.worse)


def judge(route: str, baseline: ArmStats, canary: ArmStats, settings: CanarySettings) -> Verdict:
    """Worse beyond the margins on any measure, once each side has `min_briefs` briefs."""
    if min(baseline.briefs, canary.briefs) < settings.min_briefs:
        return Verdict(route, baseline, canary, enough_data=False)
    worse: list[str] = []
    rates = (("validation failures", canary.validation_failure_rate, baseline.validation_failure_rate),
             ("fallbacks", canary.fallback_rate, baseline.fallback_rate),
             ("thumbs-down", canary.down_rate, baseline.down_rate))
    for name, mine, theirs in rates:
        if mine - theirs > settings.max_rate_increase:
            worse.append(f"{name} {mine:.0%} vs {theirs:.0%}")
    ratios = (("latency", canary.latency_ms, baseline.latency_ms, "ms"),
              ("cost per brief", canary.cost_per_brief, baseline.cost_per_brief, "$"))
    for name, mine, theirs, unit in ratios:
        if theirs > 0 and mine > theirs * settings.max_ratio:
            shown = (f"{mine:.0f} ms vs {theirs:.0f} ms" if unit == "ms" else f"${mine:.4f} vs ${theirs:.4f}")
            worse.append(f"{name} {shown}")
    return Verdict(route, baseline, canary, worse)
