"""Publishing a brief in Slack: placeholder first, then the brief in place, never a leftover.

The flow for one incident: claim the incident (so duplicates and retries never post twice),
post "gathering evidence…", run the workflow, store the brief version, and update the same
message. Any failure replaces the placeholder with what failed. Refresh re-runs the
workflow and edits the same message; PagerDuty status changes reply in the thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from bot.core.keys import incident_key
from bot.core.models import Alert, BriefResult, Evidence, EvidenceKind, ServiceEntry, Source
from bot.core.redaction import redact
from bot.draft.flow import build_brief
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


async def publish_brief(rt: Runtime, alert: Alert, service: ServiceEntry, channel: str, *,
                        thread_ts: str | None = None, key: str | None = None) -> str | None:
    """Post a brief for this incident unless one is already posted. Returns the message ts."""
    key = key or incident_key(alert, channel=channel, thread_ts=thread_ts)
    claimed = await rt.store.claim_incident(key=key, service=service.name, title=redact(alert.title),
                                            channel=channel, alert=alert)
    if not claimed:
        log.info("brief for %s already posted or in progress: not posting twice", key)
        return None
    posted = await rt.slack.chat_postMessage(
        channel=channel, thread_ts=thread_ts, text=f"Gathering evidence for {escape(redact(alert.title))}…",
        blocks=placeholder_blocks(redact(alert.title)))
    ts = str(posted["ts"])
    telemetry.first_post(alert.via, incident=key, seconds_since_alert=_since(rt, alert))
    await rt.store.set_incident_message(key=key, channel=channel, ts=ts, thread_ts=thread_ts)
    await _brief_into(rt, alert, service, key, channel, ts, trigger=alert.via)
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


async def _brief_into_traced(rt: Runtime, alert: Alert, service: ServiceEntry, key: str, channel: str,
                             ts: str, trigger: str) -> None:
    started = time.perf_counter()
    previous = await rt.store.get_brief(key)
    try:
        # Built inside the try: connectors that cannot be built (a bad setting) must replace
        # the placeholder with the failure like any other, not leave "Gathering evidence…".
        connectors = rt.new_connectors()
        try:
            # Bounded drafting (policy storms.max_concurrent_briefs): a storm waits its turn here.
            async with draft_slots(rt.policy.storms.max_concurrent_briefs).slot():
                result = await build_brief(alert, service, runner=rt.runner(brief_key=key, actor=alert.requested_by),
                                           connectors=connectors, now=rt.now(), drafter=rt.drafter())
        finally:
            await connectors.aclose()
        # Nothing changed since the last version (a Refresh with the same evidence): keep that
        # version rather than storing a copy; the card is still re-rendered.
        changed = previous is None or not same_brief(previous.result, result)
        if changed:
            await rt.store.save_brief(key, result, trigger=trigger, requested_by=alert.requested_by,
                                      latency_ms=(time.perf_counter() - started) * 1000)
        with span("publish", **{"incident.key": key}):
            await update_card(rt, key, channel=channel, ts=ts, elapsed_s=time.perf_counter() - started)
            if changed:
                await attach_chart(rt, result, alert, channel=channel, thread_ts=ts)
        telemetry.brief(trigger, "posted" if changed else "unchanged", incident=key, gaps=len(result.gaps),
                        drafter=result.brief.draft.drafter, seconds_since_alert=_since(rt, alert),
                        elapsed_s=time.perf_counter() - started)
    except Exception as exc:
        telemetry.brief(trigger, "failed", incident=key, seconds_since_alert=None,
                        elapsed_s=time.perf_counter() - started)
        log.exception("drafting the brief for %s failed", key)
        reason = redact(f"{type(exc).__name__}: {exc}")[:300]
        if previous is None:  # never leave a placeholder behind: say what failed in its place
            await rt.slack.chat_update(channel=channel, ts=ts, text=f"Could not draft the brief: {escape(reason)}",
                                       blocks=failure_blocks(reason))
        else:  # a failed refresh keeps the brief people are reading, and says so in the thread
            await rt.slack.chat_postMessage(channel=channel, thread_ts=ts,
                                            text=f"Refresh failed; the brief above is unchanged: {escape(reason)}")
        raise


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
                [g.model_dump() for g in result.gaps])
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
    """Re-render the brief's message from what is stored: the latest brief version, the
    incident's status and a filed ticket. Every update goes through here, so a status change
    never hides the ticket key and a refresh never hides the status."""
    latest = await rt.store.get_brief(key)
    if latest is None:
        return
    incident = await rt.store.get_incident(key)
    filed = [a for a in await rt.approvals.list_for_incident(key) if a.jira_key]
    ticket = filed[-1] if filed else None
    status = incident.status if incident is not None else None
    state = BriefCardState(
        brief_version=latest.version, elapsed_s=elapsed_s,
        status_line=status if status and status != "triggered" else None,
        ticket_key=ticket.jira_key if ticket else None,
        approved_by=", ".join(ticket.approvers) if ticket and ticket.approvers else None,
        approved_at=(ticket.finished_at or ticket.updated_at) if ticket else None)
    await rt.slack.chat_update(channel=channel, ts=ts, text=brief_fallback_text(latest.result),
                               blocks=brief_blocks(latest.result, incident_key=key, state=state))
