"""Where a PagerDuty incident becomes a brief or a reply in a storm's thread (`bot.intake.grouping`).

The leader of a window gets the brief (`publish_brief`); a member waits for the leader's
message, claims its own incident row (so its retries and duplicates stay single) and replies
in the leader's thread. A member whose leader never posted gets a brief of its own: grouping
must never cost an incident its brief. Status changes of a member reply in the leader's
thread; the leader resolving closes the window.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.core.models import Alert, ServiceEntry
from bot.core.redaction import redact
from bot.intake.grouping import member_line, storm_key
from bot.runtime import Runtime
from bot.slack.mrkdwn import escape
from bot.slack.publish import lease, publish_brief
from bot.store.replicas.storms import StormGroups
from bot.store.repo import IncidentRecord

log = logging.getLogger("incident_brief.storm")

LEADER_WAIT_S = 30.0  # the leader's placeholder is posted within a second or two of its claim


async def brief_or_join(rt: Runtime, alert: Alert, service: ServiceEntry, channel: str, *, key: str) -> None:
    rules = rt.policy.storms
    group = storm_key(alert, channel, rules)
    if group is None:
        await publish_brief(rt, alert, service, channel, key=key)
        return
    groups = StormGroups(rt.store.sessions)
    membership = await groups.join(group_key=group, incident_key=key, at=alert.triggered_at,
                                   window=timedelta(seconds=rules.window_s))
    if membership.leads:
        await publish_brief(rt, alert, service, channel, key=key)
        return
    leader = await _posted(rt, membership.leader_key)
    if leader is None or not leader.channel or not leader.message_ts:
        log.warning("storm: %s's leader %s has no message after %.0f s: briefing it on its own",
                    key, membership.leader_key, LEADER_WAIT_S)
        await groups.leave(key)
        await publish_brief(rt, alert, service, channel, key=key)
        return
    # Leased like a brief's claim, so the clock's finishing job leaves it alone while it replies.
    if not await rt.store.claim_incident(key=key, service=service.name, title=redact(alert.title),
                                         channel=leader.channel, alert=alert, lease_until=rt.now() + lease(rt)):
        log.info("storm member %s already replied in %s's thread: not twice", key, membership.leader_key)
        return
    posted = await rt.slack.chat_postMessage(channel=leader.channel, thread_ts=leader.message_ts,
                                             text=escape(redact(member_line(alert, rules))))
    await rt.store.set_incident_message(key=key, channel=leader.channel, ts=str(posted["ts"]))
    # A member's reply is all it publishes: final, so the clock never drafts a brief into it.
    await rt.store.set_publish_state(key, "final", now=rt.now())
    log.info("storm: %s grouped into %s's thread", key, membership.leader_key)


async def member_status(rt: Runtime, key: str, status: str, status_line: str) -> bool:
    """A grouped incident's status change, as a reply in its leader's thread. False when `key`
    is not a storm member (the caller posts the status as usual)."""
    leader_key = await StormGroups(rt.store.sessions).leader_of(key)
    if leader_key is None:
        return False
    member, leader = await rt.store.get_incident(key), await rt.store.get_incident(leader_key)
    if member is None or leader is None or not leader.channel or not leader.message_ts:
        return False
    await rt.store.set_incident_status(key, status)
    await rt.slack.chat_postMessage(channel=leader.channel, thread_ts=leader.message_ts,
                                    text=escape(f"{member.title}: {status_line}"))
    return True


async def after_status(rt: Runtime, key: str, status: str) -> None:
    """The leader resolved: the next alert of its group opens a new brief."""
    if status == "resolved" and await StormGroups(rt.store.sessions).close(key):
        log.info("storm window of %s closed: it resolved", key)


async def _posted(rt: Runtime, key: str) -> IncidentRecord | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEADER_WAIT_S
    while True:
        incident = await rt.store.get_incident(key)
        if incident is not None and incident.message_ts:
            return incident
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(0.2)
