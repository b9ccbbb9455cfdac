"""The `clock` process: housekeeping that must happen even when nobody clicks anything.

- purge audit rows past `pii.log_retention_days` (the policy's retention promise);
- finish approvals whose executor died between claim and create (a restart), so an approved
  ticket is filed once and never forgotten;
- expire approvals nobody acted on, and old webhook-delivery and cache rows;
- refresh the briefs of incidents still open, so the card does not go stale during a long one.

One clock per deployment (Procfile). Each job is a plain coroutine on `Maintenance`, so tests
run them directly and the scheduler only decides when.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.runtime import Runtime
from bot.slack.publish import refresh_brief
from bot.telemetry import record as telemetry
from bot.tickets.filing import recover_interrupted

log = logging.getLogger("incident_brief.clock")

OPEN_STATUSES = ("triggered", "acknowledged", "escalated", "reopened")


@dataclass
class Maintenance:
    rt: Runtime
    stuck_after: timedelta = timedelta(minutes=5)
    approval_ttl: timedelta = timedelta(hours=24)
    delivery_ttl: timedelta = timedelta(days=7)
    refresh_age: timedelta = timedelta(minutes=15)
    counts: dict[str, int] = field(default_factory=dict)

    async def purge_audit(self) -> int:
        cutoff = self.rt.now() - timedelta(days=self.rt.policy.pii.log_retention_days)
        return self._count("audit_purged", await self.rt.store.purge_audit(cutoff))

    async def recover_approvals(self) -> int:
        outcomes = await recover_interrupted(self.rt, self.rt.now() - self.stuck_after)
        for outcome in outcomes:
            log.warning("recovered an interrupted ticket approval: %s %s", outcome.status, outcome.key or "")
        return self._count("approvals_recovered", len(outcomes))

    async def expire_approvals(self) -> int:
        expired = await self.rt.approvals.expire_stale(self.rt.now() - self.approval_ttl)
        for approval in expired:
            telemetry.approval("expired", approval_id=approval.id, incident=approval.incident_key)
        return self._count("approvals_expired", len(expired))

    async def purge_caches(self) -> int:
        deliveries = await self.rt.store.purge_webhook_deliveries(self.rt.now() - self.delivery_ttl)
        cached = await self.rt.store.purge_cache()
        return self._count("rows_purged", deliveries + cached)

    async def refresh_open_incidents(self) -> int:
        refreshed = 0
        for status in OPEN_STATUSES:
            for incident in await self.rt.store.list_incidents(status=status):
                latest = await self.rt.store.get_brief(incident.key)
                if latest is None or not incident.message_ts:
                    continue
                if self.rt.now() - latest.created_at < self.refresh_age:
                    continue
                try:
                    await refresh_brief(self.rt, incident.key, actor=None)
                    refreshed += 1
                except Exception:  # one broken incident must not stop the others
                    log.exception("scheduled refresh of %s failed", incident.key)
        return self._count("briefs_refreshed", refreshed)

    async def run_all(self) -> dict[str, int]:
        for job in (self.purge_audit, self.recover_approvals, self.expire_approvals, self.purge_caches,
                    self.refresh_open_incidents):
            try:
                await job()
            except Exception:
                log.exception("maintenance job %s failed", job.__name__)
        return dict(self.counts)

    def _count(self, name: str, value: int) -> int:
        self.counts[name] = self.counts.get(name, 0) + value
        return value


def build_scheduler(maintenance: Maintenance) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    every = {"max_instances": 1, "coalesce": True}
    scheduler.add_job(maintenance.recover_approvals, "interval", minutes=1, **every)
    scheduler.add_job(maintenance.refresh_open_incidents, "interval", minutes=5, **every)
    scheduler.add_job(maintenance.expire_approvals, "interval", minutes=30, **every)
    scheduler.add_job(maintenance.purge_caches, "interval", hours=1, **every)
    scheduler.add_job(maintenance.purge_audit, "interval", hours=6, **every)
    return scheduler


async def run_clock(rt: Runtime) -> None:
    """Run the jobs once at start (catch up after downtime), then on their schedule."""
    maintenance = Maintenance(rt)
    await maintenance.run_all()
    scheduler = build_scheduler(maintenance)
    scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown(wait=False)
