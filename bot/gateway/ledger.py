"""The spend ledger's hard stop: a call that would pass a limit is refused before it is made.

Provider-side limits (and pydantic-ai's `UsageLimits`) are checked after a response, when the
money is already spent; this check runs before, on an estimate, and the charge after uses the
provider's own token counts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bot.core.audit import utcnow
from bot.core.policy import SpendLimits
from bot.gateway.store import GatewayStore
from bot.telemetry import record as telemetry


class SpendLedger:
    def __init__(self, store: GatewayStore, limits: SpendLimits, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.limits = limits
        self.clock = clock

    async def refusal(self, *, user: str | None, workspace: str, estimate_usd: float,
                      incident: str | None = None) -> str | None:
        """Why a call costing about `estimate_usd` must not be made, or None if it may."""
        today = self.clock().astimezone(UTC).date()
        spent = await self.store.spend_totals(user=user, workspace=workspace, day=today)
        if spent.user_day is not None:  # None exactly when there is no user (a PagerDuty trigger)
            limit = self.limits.per_user_usd_per_day
            if spent.user_day.usd + estimate_usd > limit:
                telemetry.spend_refused("user_day", incident=incident)
                return (f"the daily model budget for {user} would be passed "
                        f"(${spent.user_day.usd:.4f} spent + ~${estimate_usd:.4f} > ${limit:.2f})")
        limit = self.limits.per_workspace_usd_per_month
        if spent.workspace_month.usd + estimate_usd > limit:
            telemetry.spend_refused("workspace_month", incident=incident)
            return (f"the workspace's monthly model budget would be passed "
                    f"(${spent.workspace_month.usd:.4f} spent + ~${estimate_usd:.4f} > ${limit:.2f})")
        return None

    async def charge(self, *, user: str | None, workspace: str, usd: float, tokens: int) -> None:
        totals = await self.store.add_spend(user=user, workspace=workspace, usd=usd, tokens=tokens)
        if totals is not None:  # the running totals after this charge: the spend gauges
            telemetry.spend(workspace=workspace, user_day_usd=totals.user_day.usd if totals.user_day else None,
                            workspace_month_usd=totals.workspace_month.usd, limits=self.limits, now=self.clock())
