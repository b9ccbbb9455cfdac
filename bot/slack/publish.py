"""Publishing a brief in Slack: placeholder first, then the brief in place, never a leftover.

The flow for one incident: claim the incident (so duplicates and retries never post twice),
post "gathering evidence…", run the workflow, store each brief version, and update the same
message: an early version at the policy's `timing.first_post_s` when a source is still out
(marked pending), then the complete one saying what changed. Any failure replaces the
placeholder with what failed. Refresh re-runs the workflow and edits the same message;
PagerDuty status changes reply in the thread.

Publishing is a retriable step of the incident's stored state (`bot.store.publishing`):
claimed → posted → updated → final. A Slack error on the post or an update, or a process
killed mid-brief, leaves the incident short of final with a lease or back-off time; the clock
(`finish_publishing`) takes it up again (post if never posted, re-render if the update failed,
re-draft if no complete version was stored), a bounded number of times; a redelivery of an
incident claimed but never posted resumes it instead of being dropped as a duplicate. An
incident that resolved before its brief was ever up is posted once, complete and marked
resolved (`_post_resolved`): a record of a closed incident, never a live-looking card.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackClientError

from bot.core.audit import BRIEF_ABANDONED, ControlRecord
from bot.core.keys import incident_key
from bot.core.models import Alert, BriefResult, Evidence, EvidenceKind, ServiceEntry, Source
from bot.core.redaction import redact
from bot.draft.flow import brief_versions, build_brief
from bot.gather.connectors import Connectors
from bot.gather.tools import ToolRunner
from bot.intake.grouping import draft_slots
from bot.runtime import Runtime
from bot.slack.blocks import (
    BriefCardState,
    brief_blocks,
    brief_fallback_text,
    failure_blocks,
    placeholder_blocks,
)
from bot.slack.charts import render_metric_chart
from bot.slack.mrkdwn import escape
from bot.store.repo import IncidentRecord
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import span

log = logging.getLogger("incident_brief.briefing")


_MONITOR_LINK = re.compile(r"/monitors/(\d+)")


def monitor_id_in(link: str | None) -> int | None:
    """The monitor id in a pasted Datadog monitor link (…/monitors/12345…)."""
    match = _MONITOR_LINK.search(link or "")
    return int(match.group(1)) if match else None


async def service_from_monitor(rt: Runtime, monitor_id: int, actor: str | None) -> ServiceEntry | None:
    """Which catalog service a pasted monitor belongs to, from its `service:` tag. The read
    goes through the choke point like any other (policy, timeout, audit)."""
    connectors = rt.new_connectors()
    if connectors.datadog is None:
        return None
    datadog = connectors.datadog
    try:
        outcome = await rt.runner(brief_key=None, actor=actor).read(
            "datadog.get_monitor", Source.DATADOG, lambda: datadog.get_monitor(monitor_id),
            args={"monitor_id": monitor_id})
    finally:
        await connectors.aclose()
    for item in outcome.evidence:
        for tag in item.data.get("tags", []):
            name = str(tag).removeprefix("service:")
            if str(tag).startswith("service:") and rt.catalog.get(name):
                return rt.catalog.get(name)
    return None


@dataclass(frozen=True)
class PublishRetry:
    """How often a stuck publish step is tried again: attempt n+1 waits `first` × 2^(n-1),
    at most `longest`, and there are `max_attempts` in all (the live one included)."""

    max_attempts: int = 6
    first: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(minutes=30)

    def backoff(self, attempt: int) -> timedelta:
        return min(self.first * 2 ** max(attempt - 1, 0), self.longest)


RETRY = PublishRetry()


def lease(rt: Runtime) -> timedelta:
    """How long a live attempt owns the publish step before the clock may take it over: the
    slowest source twice (the reads, then the follow-ups they start), the model's calls, and a
    minute of margin. Long enough never to race a brief still being drafted."""
    slowest = rt.policy.timing.slowest_timeout(rt.settings.source_timeout_s)
    model = rt.settings.llm.timeout_s * max(rt.policy.steps.max_model_calls_per_brief, 1)
    return timedelta(seconds=2 * slowest + model + 60)


async def publish_brief(rt: Runtime, alert: Alert, service: ServiceEntry, channel: str, *,
                        thread_ts: str | None = None, key: str | None = None) -> str | None:
    """Post a brief for this incident unless one is already posted. Returns the message ts."""
    key = key or incident_key(alert, channel=channel, thread_ts=thread_ts)
    claimed = await rt.store.claim_incident(key=key, service=service.name, title=redact(alert.title),
                                            channel=channel, alert=alert, thread_ts=thread_ts,
                                            lease_until=rt.now() + lease(rt))
    if not claimed:
        if not await _resume_unposted(rt, key):
            log.info("brief for %s already posted or in progress: not posting twice", key)
            return None
        log.warning("brief for %s was claimed but never posted: resuming it", key)
    return await _post_and_brief(rt, alert, service, key, channel, thread_ts, trigger=alert.via)


async def _resume_unposted(rt: Runtime, key: str) -> bool:
    """A duplicate trigger for an incident whose first post failed (or whose process died before
    posting) takes the step over, once its last attempt has ended; never one that is posted."""
    incident = await rt.store.get_incident(key)
    if incident is None or incident.publish_state != "claimed" or incident.message_ts:
        return False
    now = rt.now()
    return await rt.store.take_publish(key, attempts=incident.publish_attempts, now=now,
                                       lease_until=now + lease(rt), max_attempts=RETRY.max_attempts,
                                       after_failure=True)


async def _post_and_brief(rt: Runtime, alert: Alert, service: ServiceEntry, key: str, channel: str,
                          thread_ts: str | None, *, trigger: str) -> str:
    incident = await rt.store.get_incident(key)
    if incident is not None and incident.status == "resolved":
        return await _post_resolved(rt, alert, service, incident, channel, thread_ts, trigger=trigger)
    title = redact(alert.title)
    try:
        posted = await rt.slack.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                                 text=f"Gathering evidence for {escape(title)}…",
                                                 blocks=placeholder_blocks(title))
    except Exception as exc:
        await _failed(rt, key, "post", exc)
        raise
    ts = str(posted["ts"])
    telemetry.first_post(alert.via, incident=key, seconds_since_alert=_since(rt, alert))
    await rt.store.set_incident_message(key=key, channel=channel, ts=ts, thread_ts=thread_ts)
    await rt.store.set_publish_state(key, "posted", now=rt.now())
    await _brief_into(rt, alert, service, key, channel, ts, trigger=alert.via)
    return ts


async def finish_publishing(rt: Runtime, key: str) -> bool:
    """Finish an incident stuck short of final (the clock's job): post it if it never was,
    re-render the card when the complete brief is stored but its update failed, else draft
    again into the message. True when this call took the step (and finished it); a failure is
    recorded with its back-off and raised."""
    incident = await rt.store.get_incident(key)
    if incident is None or incident.publish_state == "final":
        return False
    now = rt.now()
    if not await rt.store.take_publish(key, attempts=incident.publish_attempts, now=now,
                                       lease_until=now + lease(rt), max_attempts=RETRY.max_attempts):
        return False  # another replica, a redelivery or a live worker has it
    alert, channel = incident.alert, incident.channel
    if alert is None or not channel:
        await _failed(rt, key, "resume", LookupError("no alert or channel stored to brief from"))
        return False
    service = rt.catalog.resolve(alert.service)
    if not incident.message_ts:
        await _post_and_brief(rt, alert, service, key, channel, incident.slack_thread_ts, trigger="scheduled")
        return True
    latest = await rt.store.get_brief(key)
    if latest is not None and latest.result.final:
        try:
            await update_card(rt, key, channel=channel, ts=incident.message_ts)
        except Exception as exc:
            await _failed(rt, key, "update", exc)
            raise
        await rt.store.set_publish_state(key, "final", now=rt.now())
        return True
    await _brief_into(rt, alert, service, key, channel, incident.message_ts, trigger="scheduled")
    return True


async def _failed(rt: Runtime, key: str, step: str, exc: BaseException) -> None:
    """Record a failed attempt with its back-off; never masks the failure being handled."""
    try:
        incident = await rt.store.get_incident(key)
        attempt = incident.publish_attempts if incident is not None else 1
        now = rt.now()
        error = redact(f"{step}: {type(exc).__name__}: {exc}")[:300]
        await rt.store.publish_failed(key, error, retry_at=now + RETRY.backoff(attempt), now=now)
        if attempt >= RETRY.max_attempts and incident is not None:
            await _gave_up(rt, incident, attempt, error, short=f"{step}: {type(exc).__name__}")
    except Exception:
        log.exception("could not record the failed %s of %s", step, key)


async def _gave_up(rt: Runtime, incident: IncidentRecord, attempts: int, error: str, *, short: str) -> None:
    """The last attempt failed: nothing retries this brief any more, so it is never silent. An
    ERROR log, the briefs counter (outcome ``abandoned``), an audit row for the report and the
    digest, and a short plain-text line in the channel (a card Slack keeps refusing may still
    leave room for one line) saying what happened and how to get a brief; the line names the
    failed step and the error's type, the audit row has the (masked) message."""
    key = incident.key
    log.error("publishing the brief for %s failed %d times: giving up (%s)", key, attempts, error)
    telemetry.brief(incident.alert.via if incident.alert else "unknown", "abandoned", incident=key,
                    seconds_since_alert=None, elapsed_s=0.0)
    await rt.store.add_control_event(ControlRecord(
        kind=BRIEF_ABANDONED, subject=key, actor="publisher", detail=error,
        data={"attempts": attempts, "service": incident.service, "channel": incident.channel}, at=rt.now()))
    if not incident.channel:
        return
    text = (f":warning: I gave up on the brief for {escape(incident.title)} after {attempts} attempts "
            f"(last: {escape(short)}). Mention me to try again; whoever runs the bot can see every attempt with "
            f"`incident-brief audit {key}`.")
    try:
        await rt.slack.chat_postMessage(channel=incident.channel, text=text,
                                        thread_ts=incident.message_ts or incident.slack_thread_ts)
    except Exception:
        log.warning("could not say in %s that the brief for %s was given up", incident.channel, key, exc_info=True)


LATE_NOTE = ("This brief could not be posted while the incident was open; it is posted now, after the "
             "incident resolved, for the record. No ticket is filed from a resolved incident's brief.")


async def _post_resolved(rt: Runtime, alert: Alert, service: ServiceEntry, incident: IncidentRecord, channel: str,
                         thread_ts: str | None, *, trigger: str) -> str:
    """The incident resolved before its brief was ever up (the first post failed, the process
    died before posting): post the brief once, complete and marked resolved with when, with no
    ticket button and no "gathering" placeholder, and finish. Whoever reads the channel later
    finds a record of a closed incident, never a live-looking card, and the brief is not lost.
    A complete brief stored by an earlier attempt (whose post failed) is posted, not drafted again."""
    key, started = incident.key, time.perf_counter()
    try:
        latest = await rt.store.get_brief(key)
        if latest is None or not latest.result.final:
            async with _drafting(rt, alert, key) as (runner, connectors):
                result = await build_brief(alert, service, runner=runner, connectors=connectors, now=rt.now(),
                                           drafter=rt.drafter())
            await rt.store.save_brief(key, result, trigger=trigger, requested_by=alert.requested_by,
                                      latency_ms=(time.perf_counter() - started) * 1000)
        message = await card_message(rt, key)
        if message is None:
            raise LookupError(f"no brief stored for {key}")
        text, blocks = message
        posted = await rt.slack.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)
    except Exception as exc:
        await _failed(rt, key, "post after resolve", exc)
        raise
    ts = str(posted["ts"])
    await rt.store.set_incident_message(key=key, channel=channel, ts=ts, thread_ts=thread_ts)
    await rt.store.set_publish_state(key, "final", now=rt.now())
    log.warning("brief for %s posted after the incident resolved (%s)", key, _status_line(incident))
    stored = await rt.store.get_brief(key)
    if stored is not None:
        telemetry.brief(trigger, "posted_after_resolve", incident=key, gaps=len(stored.result.gaps),
                        drafter=stored.result.brief.draft.drafter, seconds_since_alert=_since(rt, alert),
                        elapsed_s=time.perf_counter() - started)
        await attach_chart(rt, stored.result, alert, channel=channel, thread_ts=ts)
    try:  # why a brief shows up for a closed incident; the brief itself is already up
        await rt.slack.chat_postMessage(channel=channel, thread_ts=ts, text=LATE_NOTE)
    except Exception:
        log.warning("could not say in its thread why the brief for %s was posted late", key, exc_info=True)
    return ts


async def refresh_brief(rt: Runtime, key: str, actor: str | None, *, workspace: str | None = None) -> None:
    """Re-run the workflow for a stored incident and edit its message in place. Whoever asked
    for the refresh (and their Slack team) pays for its model calls; a scheduled refresh
    (`actor` None) is nobody's: the incident's workspace pays, no person's daily budget."""
    incident = await rt.store.get_incident(key)
    if incident is None or incident.alert is None or not incident.message_ts or not incident.channel:
        raise LookupError(f"no brief message stored for {key}")
    alert = incident.alert.model_copy(update={"requested_by": actor,
                                              "workspace": workspace or incident.alert.workspace})
    if actor is not None:  # a person asked for it: the report counts it as stepping in
        await rt.store.note_human_refresh(key)
    await _brief_into(rt, alert, rt.catalog.resolve(alert.service), key, incident.channel, incident.message_ts,
                      trigger="refresh" if actor else "scheduled")


def _since(rt: Runtime, alert: Alert) -> float:
    return (rt.now() - alert.triggered_at).total_seconds()


async def _brief_into(rt: Runtime, alert: Alert, service: ServiceEntry, key: str, channel: str,
                      ts: str, *, trigger: str) -> None:
    """Build the brief (the one flow, keyed by the incident) and show it in the message `ts`."""
    with span("brief", **{"incident.key": key, "brief.trigger": trigger}):
        await _brief_into_traced(rt, alert, service, key, channel, ts, trigger)


async def _single(result: Awaitable[BriefResult]) -> AsyncGenerator[BriefResult, None]:
    yield await result


@asynccontextmanager
async def _drafting(rt: Runtime, alert: Alert, key: str) -> AsyncIterator[tuple[ToolRunner, Connectors]]:
    """What a brief is drafted with: the incident's tool runner and fresh connectors (closed
    afterwards), inside one of the policy's drafting slots (`storms.max_concurrent_briefs`:
    a storm waits its turn here)."""
    connectors = rt.new_connectors()
    try:
        runner = rt.runner(brief_key=key, actor=alert.requested_by)
        async with draft_slots(rt.policy.storms.max_concurrent_briefs).slot():
            yield runner, connectors
    finally:
        await connectors.aclose()


async def _brief_into_traced(rt: Runtime, alert: Alert, service: ServiceEntry, key: str, channel: str,
                             ts: str, trigger: str) -> None:
    started = time.perf_counter()
    previous = await rt.store.get_brief(key)
    shown = previous.result if previous is not None else None
    try:
        # Built inside the try: connectors that cannot be built (a bad setting) must replace
        # the placeholder with the failure like any other, not leave "Gathering evidence…".
        async with _drafting(rt, alert, key) as (runner, connectors):
            # A first brief is posted at the deadline with what is in; a brief people are
            # already reading (a refresh, a resumed one) is replaced only by a complete one.
            versions = (brief_versions(alert, service, runner=runner, connectors=connectors, now=rt.now(),
                                       first_post_s=rt.policy.timing.first_post_s, drafter=rt.drafter())
                        if previous is None else
                        _single(build_brief(alert, service, runner=runner, connectors=connectors,
                                            now=rt.now(), drafter=rt.drafter())))
            async with aclosing(versions):
                async for result in versions:
                    try:
                        await _show(rt, alert, key, channel, ts, result, shown, trigger=trigger,
                                    started=started)
                    except SlackClientError:
                        if result.final:
                            raise
                        # An early version Slack refused is stored; the complete one is still
                        # worth waiting for rather than giving up the whole brief.
                        log.warning("Slack refused the early brief for %s; going on to the final one", key)
                    shown = result
    except Exception as exc:
        telemetry.brief(trigger, "failed", incident=key, seconds_since_alert=None,
                        elapsed_s=time.perf_counter() - started)
        log.exception("drafting or showing the brief for %s failed", key)
        await _failed(rt, key, "brief", exc)
        reason = redact(f"{type(exc).__name__}: {exc}")[:300]
        try:
            if isinstance(exc, SlackClientError):
                pass  # Slack refused the update: telling it so would fail too; the clock re-renders
            elif shown is None:  # never leave a placeholder behind: say what failed in its place
                await rt.slack.chat_update(channel=channel, ts=ts, text=f"Could not draft the brief: {escape(reason)}",
                                           blocks=failure_blocks(reason))
            elif previous is not None:  # a failed refresh keeps the brief people read, and says so
                await rt.slack.chat_postMessage(channel=channel, thread_ts=ts,
                                                text=f"Refresh failed; the brief above is unchanged: {escape(reason)}")
        except Exception:  # Slack itself is failing: the clock tries again (`finish_publishing`)
            log.warning("could not tell Slack that the brief for %s failed", key, exc_info=True)
        raise


async def _show(rt: Runtime, alert: Alert, key: str, channel: str, ts: str, result: BriefResult,
                shown: BriefResult | None, *, trigger: str, started: float) -> None:
    """Store one version (unless nothing changed) and put it in the message."""
    # Nothing changed since the last version (a Refresh with the same evidence): keep that
    # version rather than storing a copy; the card is still re-rendered.
    changed = shown is None or not same_brief(shown, result)
    if changed:
        await rt.store.save_brief(key, result, trigger=trigger, requested_by=alert.requested_by,
                                  latency_ms=(time.perf_counter() - started) * 1000)
    with span("publish", **{"incident.key": key}):
        await update_card(rt, key, channel=channel, ts=ts, elapsed_s=time.perf_counter() - started)
        await rt.store.set_publish_state(key, "final" if result.final else "updated", now=rt.now())
        if changed and result.final:
            await attach_chart(rt, result, alert, channel=channel, thread_ts=ts)
    if result.final:
        telemetry.brief(trigger, "posted" if changed else "unchanged", incident=key, gaps=len(result.gaps),
                        drafter=result.brief.draft.drafter, seconds_since_alert=_since(rt, alert),
                        elapsed_s=time.perf_counter() - started)
    else:
        log.info("early brief for %s posted with %s pending", key, ", ".join(s.value for s in result.pending))


def key_metric(result: BriefResult) -> Evidence | None:
    """The metric the brief leans on most: the first cited one that has points to draw."""
    by_id = {item.id: item for item in result.evidence}
    for cited in result.brief.cited_ids():
        item = by_id.get(cited)
        if item is not None and item.kind == EvidenceKind.METRIC and item.data.get("points"):
            return item
    return None


async def attach_chart(rt: Runtime, result: BriefResult, alert: Alert, *, channel: str, thread_ts: str) -> None:
    """Post the key series around the alert as a PNG in the brief's thread, with Datadog's own
    graph link. A chart that cannot be drawn or uploaded is logged, never fatal."""
    metric = key_metric(result)
    if metric is None:
        return
    try:
        png = await asyncio.to_thread(render_metric_chart, metric, alert.triggered_at)
        link = f" · <{metric.link}|open in Datadog>" if metric.link else ""
        await rt.slack.files_upload_v2(
            channel=channel, thread_ts=thread_ts, content=png, filename=f"{metric.id}.png",
            title=metric.title[:200], initial_comment=f"Key metric around the alert{link}")
    except Exception:
        log.warning("could not attach the chart of %s", metric.id, exc_info=True)


def same_brief(before: BriefResult, after: BriefResult) -> bool:
    """Same claims on the same evidence (drafting metadata such as timing aside)."""
    def core(result: BriefResult) -> object:
        return (result.brief.model_dump(exclude={"draft"}), sorted(e.id for e in result.evidence),
                [g.model_dump() for g in result.gaps], list(result.pending))
    return core(before) == core(after)


async def post_status(rt: Runtime, key: str, status: str, status_line: str) -> None:
    """A PagerDuty status change: reply in the brief's thread and update its header."""
    incident = await rt.store.get_incident(key)
    if incident is None or not incident.message_ts or not incident.channel:
        log.info("status change for %s, which has no brief message: nothing to update", key)
        return
    await rt.store.set_incident_status(key, status)
    await rt.slack.chat_postMessage(channel=incident.channel, thread_ts=incident.message_ts,
                                    text=escape(status_line))
    await update_card(rt, key, channel=incident.channel, ts=incident.message_ts)


async def update_card(rt: Runtime, key: str, *, channel: str, ts: str, elapsed_s: float | None = None) -> None:
    """Re-render the brief's message from what is stored (`card_message`). Every update goes
    through here, so a status change never hides the ticket key and a refresh never hides the
    status."""
    message = await card_message(rt, key, elapsed_s=elapsed_s)
    if message is None:
        return
    text, blocks = message
    await rt.slack.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)


async def card_message(rt: Runtime, key: str, *,
                       elapsed_s: float | None = None) -> tuple[str, list[dict[str, Any]]] | None:
    """The brief's message (fallback text and blocks) from what is stored: the latest brief
    version, the incident's status and when it happened, and a filed ticket. None before any
    version is stored."""
    latest = await rt.store.get_brief(key)
    if latest is None:
        return None
    incident = await rt.store.get_incident(key)
    filed = [a for a in await rt.approvals.list_for_incident(key) if a.jira_key]
    ticket = filed[-1] if filed else None
    state = BriefCardState(
        brief_version=latest.version, elapsed_s=elapsed_s, status_line=_status_line(incident),
        ticket_key=ticket.jira_key if ticket else None,
        approved_by=", ".join(ticket.approvers) if ticket and ticket.approvers else None,
        approved_at=(ticket.finished_at or ticket.updated_at) if ticket else None)
    return (brief_fallback_text(latest.result, state.status_line),
            brief_blocks(latest.result, incident_key=key, state=state))


def _status_line(incident: IncidentRecord | None) -> str | None:
    """Where the incident stands, for the card: None while triggered, else the status and, when
    PagerDuty said, when it happened ("Resolved at 14:31 UTC")."""
    if incident is None or not incident.status or incident.status == "triggered":
        return None
    at = _utc(incident.status_at) if incident.status_at else None
    return incident.status.capitalize() + (f" at {at:%H:%M} UTC" if at else "")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
