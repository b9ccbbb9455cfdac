"""The `clock` process: housekeeping that must happen even when nobody clicks anything.

- purge audit rows past `pii.log_retention_days` (the policy's retention promise);
- finish approvals whose executor died between claim and create (a restart) or whose create had
  no answer in time, so an approved ticket is filed once and never forgotten, and show the
  outcome on the card and to the approvers (`bot.slack.ticket_flow.tell_recovered`);
- expire approvals nobody acted on, and old webhook-delivery and cache rows;
- finish publishing any incident stuck short of its final state (a Slack error on the post or an
  update, a process killed mid-brief), with back-off and a bound (`bot.slack.publish.finish_publishing`);
- refresh the briefs of incidents still open, so the card does not go stale during a long one;
- watch canary models and switch off one that does worse than its baseline;
- post the daily digest of the report's headline numbers (``telemetry.digest_channel``).

Any number of clocks may run (a rolling deploy, a standby): exactly one acts at a time. A clock
leads while it holds the store's scheduler lock (`bot.store.replicas.leader`: a Postgres advisory lock on
a dedicated connection, a file lock beside a SQLite file); the others stand by and try again
every `LEAD_RETRY_S`, so one takes over within that when the leader stops, crashes or loses
its connection. Each job is a plain coroutine on `Maintenance`, so tests run them directly; the
scheduler only decides when, and runs a job only while this clock still leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app.reports import digest_text
from bot.gateway.canary import judge
from bot.runtime import Runtime
from bot.slack.mrkdwn import escape
from bot.slack.publish import RETRY, finish_publishing, refresh_brief
from bot.slack.ticket_flow import tell_recovered
from bot.store.replicas.leader import LeaderLock, leader_lock
from bot.store.reports import Reports
from bot.telemetry import record as telemetry
from bot.tickets.filing import recover_interrupted

log = logging.getLogger("incident_brief.clock")
CANARY_WATCH = "canary-watch"  # the actor on the audit row when the bot switches a canary off

OPEN_STATUSES = ("triggered", "acknowledged", "escalated", "reopened")
LEAD_RETRY_S = 15.0  # how often a standby tries the lock, and the leader checks it still holds it


@dataclass
class Maintenance:
    rt: Runtime
    stuck_after: timedelta = timedelta(minutes=5)
    approval_ttl: timedelta = timedelta(hours=24)
    delivery_ttl: timedelta = timedelta(days=7)
    refresh_age: timedelta = timedelta(minutes=15)
    counts: dict[str, int] = field(default_factory=dict)
    # Set while this clock holds the scheduler lock; a job that fires after the lock was lost
    # (between two checks) sees it cleared and does nothing.
    leading: bool = True
    lock: LeaderLock | None = None  # asked again right before each scheduled job

    async def purge_audit(self) -> int:
        cutoff = self.rt.now() - timedelta(days=self.rt.policy.pii.log_retention_days)
        return self._count("audit_purged", await self.rt.store.purge_audit(cutoff))

    async def recover_approvals(self) -> int:
        """Settle approvals cut off mid-filing or whose create had no answer in time, and show
        each outcome on its card and to its approvers, as a live filing would."""
        recovered = await recover_interrupted(self.rt, self.rt.now() - self.stuck_after)
        for item in recovered:
            log.warning("recovered an interrupted ticket approval: %s %s", item.outcome.status, item.outcome.key or "")
            try:
                await tell_recovered(self.rt, item)
            except Exception:  # the ticket is recorded; a click on the stale card is told its key
                log.exception("could not show the recovered approval %s in Slack", item.approval.id)
        return self._count("approvals_recovered", len(recovered))

    async def expire_approvals(self) -> int:
        expired = await self.rt.approvals.expire_stale(self.rt.now() - self.approval_ttl)
        for approval in expired:
            telemetry.approval("expired", approval_id=approval.id, incident=approval.incident_key)
        return self._count("approvals_expired", len(expired))

    async def purge_caches(self) -> int:
        deliveries = await self.rt.store.purge_webhook_deliveries(self.rt.now() - self.delivery_ttl)
        cached = await self.rt.store.purge_cache()
        return self._count("rows_purged", deliveries + cached)

    async def finish_publishing(self) -> int:
        """Take up every incident whose publish step is short of final and whose lease or
        back-off has run out; each failure is recorded (with the next back-off) and logged."""
        finished = 0
        for key in await self.rt.store.unfinished_incidents(now=self.rt.now(), max_attempts=RETRY.max_attempts):
            try:
                if await finish_publishing(self.rt, key):
                    finished += 1
                    log.warning("finished publishing the brief for %s", key)
            except Exception:  # recorded with its back-off; one broken incident must not stop the others
                log.exception("finishing the brief for %s failed", key)
        return self._count("briefs_finished", finished)

    async def refresh_open_incidents(self) -> int:
        refreshed = 0
        for status in OPEN_STATUSES:
            for incident in await self.rt.store.list_incidents(status=status):
                latest = await self.rt.store.get_brief(incident.key)
                # Not yet published in full: `finish_publishing` owns it until it is final.
                if latest is None or not incident.message_ts or incident.publish_state != "final":
                    continue
                if self.rt.now() - latest.created_at < self.refresh_age:
                    continue
                try:
                    await refresh_brief(self.rt, incident.key, actor=None)
                    refreshed += 1
                except Exception:  # one broken incident must not stop the others
                    log.exception("scheduled refresh of %s failed", incident.key)
        return self._count("briefs_refreshed", refreshed)

    async def watch_canaries(self) -> int:
        """Compare each live canary with its baseline over the window; switch off the worse ones
        (in the store, so every replica stops using them), with an audit row and a message."""
        canary = self.rt.settings.llm.canary
        switched = 0
        for route, candidate in canary.routes.items():
            if await self.rt.canaries.switched_off(route, candidate.model):
                continue
            baseline_model = self.rt.settings.llm.routes[route]
            stats = await self.rt.canaries.arm_stats(
                route, since=self.rt.now() - timedelta(hours=canary.window_hours),
                models={"canary": candidate.model, "baseline": baseline_model})
            verdict = judge(route, stats["baseline"], stats["canary"], canary)
            if not verdict.switch_off:
                continue
            data = {"window_hours": canary.window_hours, "baseline": dataclasses.asdict(verdict.baseline),
                    "canary": dataclasses.asdict(verdict.canary), "worse": verdict.worse}
            if not await self.rt.canaries.switch_off(route, candidate.model, reason=verdict.summary(),
                                                     actor=CANARY_WATCH, data=data):
                continue  # another clock (or an operator) got there first
            switched += 1
            telemetry.canary_switched_off(route, candidate.model, reason=verdict.summary())
            channel = canary.channel or self.rt.settings.slack.default_channel
            if channel:
                await self.rt.slack.chat_postMessage(channel=channel, text=escape(
                    f"Canary switched off: {route} briefs go back to {baseline_model}. {verdict.summary()} "
                    f"(over {canary.window_hours:g} h: {verdict.canary.briefs} canary and "
                    f"{verdict.baseline.briefs} baseline briefs). `incident-brief canary` shows the compare."))
        return self._count("canaries_switched_off", switched)

    async def post_digest(self) -> int:
        """The report's headline numbers for the last 24 hours, to the digest channel."""
        channel = self.rt.settings.telemetry.digest_channel
        if not channel:
            return 0
        until = self.rt.now()
        report = await Reports(self.rt.store.sessions).trust_report(since=until - timedelta(days=1), until=until)
        await self.rt.slack.chat_postMessage(channel=channel, text=digest_text(report))
        return self._count("digests_posted", 1)

    async def run_all(self) -> dict[str, int]:
        """Every job once (at start, to catch up), but the digest: it posts on its hour only."""
        for job in (self.purge_audit, self.recover_approvals, self.finish_publishing, self.expire_approvals,
                    self.purge_caches, self.refresh_open_incidents, self.watch_canaries):
            try:
                await job()
            except Exception:
                log.exception("maintenance job %s failed", job.__name__)
        return dict(self.counts)

    def _count(self, name: str, value: int) -> int:
        self.counts[name] = self.counts.get(name, 0) + value
        return value


def _while_leading(maintenance: Maintenance, job: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[int]]:
    @functools.wraps(job)
    async def guarded() -> int:
        # Asked again here, not only every LEAD_RETRY_S: the lock may have gone with its
        # connection since the last check, and another clock may lead already.
        if not maintenance.leading or (maintenance.lock is not None and not await maintenance.lock.still_held()):
            return 0
        return await job()
    return guarded


def build_scheduler(maintenance: Maintenance) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    every = {"max_instances": 1, "coalesce": True}

    def add(job: Callable[[], Awaitable[int]], trigger: str, **when: int) -> None:
        scheduler.add_job(_while_leading(maintenance, job), trigger, **when, **every)

    add(maintenance.recover_approvals, "interval", minutes=1)
    # Every 15 s: the first back-off is 30 s, so a stuck brief is retried within 45 s of failing.
    add(maintenance.finish_publishing, "interval", seconds=15)
    add(maintenance.refresh_open_incidents, "interval", minutes=5)
    add(maintenance.expire_approvals, "interval", minutes=30)
    add(maintenance.purge_caches, "interval", hours=1)
    add(maintenance.purge_audit, "interval", hours=6)
    if maintenance.rt.settings.llm.canary.routes:
        add(maintenance.watch_canaries, "interval", minutes=5)
    telemetry_settings = maintenance.rt.settings.telemetry
    if telemetry_settings.digest_channel:
        add(maintenance.post_digest, "cron", hour=telemetry_settings.digest_hour_utc, minute=0)
    return scheduler


async def run_clock(rt: Runtime, *, lock: LeaderLock | None = None, maintenance: Maintenance | None = None,
                    retry_s: float = LEAD_RETRY_S, stop: asyncio.Event | None = None) -> None:
    """Stand by until this clock holds the scheduler lock; then run the jobs once (catch up
    after downtime) and on their schedule for as long as it holds it. Until `stop` is set."""
    lock = lock or leader_lock(rt.settings.database_url)
    maintenance = maintenance or Maintenance(rt)
    maintenance.lock = lock
    stop = stop or asyncio.Event()
    standing_by = False
    try:
        while not stop.is_set():
            if not await lock.try_acquire():
                if not standing_by:
                    log.info("another clock leads the scheduler: standing by (trying every %g s)", retry_s)
                    standing_by = True
                await _sleep_unless(stop, retry_s)
                continue
            standing_by = False
            log.info("this clock leads the scheduler")
            await _lead(maintenance, lock, retry_s, stop)
            await _sleep_unless(stop, retry_s)  # lost it: give a standby the first try
    finally:
        await lock.release()


async def _lead(maintenance: Maintenance, lock: LeaderLock, retry_s: float, stop: asyncio.Event) -> None:
    maintenance.leading = True
    scheduler = build_scheduler(maintenance)
    try:
        await maintenance.run_all()
        scheduler.start()
        while not stop.is_set():
            await _sleep_unless(stop, retry_s)
            if not stop.is_set() and not await lock.still_held():
                log.error("this clock lost the scheduler lock (its store connection ended): standing by")
                return
    finally:
        maintenance.leading = False
        if scheduler.running:
            scheduler.shutdown(wait=False)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
