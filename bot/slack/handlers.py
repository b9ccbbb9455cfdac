"""Bolt listeners: each acks first (Slack's 3 s), then works in the background.

Listeners stay thin: they read the request, check who is asking, and call a flow
(`bot.slack.publish`, `bot.tickets.filing`). Errors are shown where the person is (ephemeral or in
the modal), never swallowed.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.keys import incident_key
from bot.core.models import Alert, TicketProposal
from bot.core.redaction import clip, redact
from bot.intake.mentions import HELP_TEXT, parse_request
from bot.runtime import Runtime
from bot.slack.approvers import may_approve
from bot.slack.blocks import (
    JIRA_SUMMARY_MAX,
    dry_run_preview_blocks,
    feedback_reason_modal,
    ticket_description,
    ticket_modal,
)
from bot.slack.mrkdwn import escape
from bot.slack.publish import monitor_id_in, publish_brief, refresh_brief, service_from_monitor, update_card
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import span
from bot.tickets.filing import TicketFields, approve_and_file

log = logging.getLogger("incident_brief.slack")


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        rt.spawn(_handle_mention(rt, event, client, team=_team(body, event)), name="mention")

    @app.command("/brief")
    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        request = parse_request(command.get("text", ""), rt.catalog)
        service = request.service or rt.catalog.by_channel(command["channel_id"])
        if service is None:
            known = ", ".join(f"`{name}`" for name in rt.catalog.names()) or "none configured"
            await respond(f"Which service? Known services: {known}. Try `/brief <service>`.")
            return
        alert = Alert(via="slack_mention", title=f"{service.name}: brief requested", service=service.name,
                      triggered_at=rt.now(), mention_text=request.text, requested_by=command["user_id"],
                      workspace=command.get("team_id"))
        # Each /brief is its own request (Slack's trigger id); a retry of the same one posts once.
        request_id = command.get("trigger_id") or rt.now().timestamp()
        key = incident_key(alert, channel=command["channel_id"], thread_ts=f"cmd:{request_id}")
        rt.spawn(publish_brief(rt, alert, service, command["channel_id"], key=key), name="command")

    @app.action("ticket_create")
    async def on_ticket(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await _open_ticket_modal(rt, body, client)

    @app.action("brief_refresh")
    async def on_refresh(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        meta = _action_meta(body)
        rt.spawn(refresh_brief(rt, meta["incident_key"], body["user"]["id"], workspace=_team(body)),
                 name="refresh")

    @app.action("feedback_up")
    async def on_up(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        meta = _action_meta(body)
        await rt.store.save_feedback(incident_key=meta["incident_key"], version=int(meta["brief_version"]),
                                     user=body["user"]["id"], vote="up", reason=None)
        telemetry.feedback("up", incident=meta["incident_key"], version=int(meta["brief_version"]))
        await _ephemeral(client, body, "Thanks: noted 👍")

    @app.action("feedback_down")
    async def on_down(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        meta = _action_meta(body)
        await rt.store.save_feedback(incident_key=meta["incident_key"], version=int(meta["brief_version"]),
                                     user=body["user"]["id"], vote="down", reason=None)
        telemetry.feedback("down", incident=meta["incident_key"], version=int(meta["brief_version"]))
        await client.views_open(trigger_id=body["trigger_id"], view=feedback_reason_modal(
            incident_key=meta["incident_key"], brief_version=int(meta["brief_version"])))

    @app.view("feedback_reason")
    async def on_feedback_reason(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        reason = _first_value(view)
        if reason:
            await rt.store.save_feedback(incident_key=meta["incident_key"], version=int(meta["brief_version"]),
                                         user=body["user"]["id"], vote="down", reason=redact(reason)[:500])

    @app.view("ticket_submit")
    async def on_ticket_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                               client: AsyncWebClient) -> None:
        fields = _ticket_fields(view)
        if fields.project not in rt.jira_projects():
            await ack(response_action="errors", errors={"project": "Not an allowed project."})
            return
        if not fields.summary.strip():
            await ack(response_action="errors", errors={"summary": "A summary is required."})
            return
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        rt.spawn(_file_ticket(rt, meta, body["user"]["id"], fields, client), name="ticket")

    acknowledge_the_rest(app)


def acknowledge_the_rest(app: AsyncApp) -> None:
    """Everything Slack sends that no listener above wants (other events the app is subscribed
    to, a message edit, a closed modal, another app's action or shortcut) is acknowledged, not
    answered 404 as Bolt does by default: Slack retries failed deliveries and turns off event
    subscriptions that fail too often. Registered last, so the listeners above match first."""
    anything = re.compile(".*")

    async def acknowledge(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        log.debug("slack %s acknowledged, not acted on", body.get("type"))

    app.event(anything)(acknowledge)
    app.action(anything)(acknowledge)
    app.view(anything)(acknowledge)
    app.view_closed(anything)(acknowledge)
    app.shortcut(anything)(acknowledge)
    app.options(anything)(acknowledge)


def _team(body: dict[str, Any], event: dict[str, Any] | None = None) -> str | None:
    """The Slack team (workspace) a request came from: an event envelope's ``team_id``, an
    interaction's ``team.id``, or the event's own ``team``."""
    team = body.get("team_id") or (body.get("team") or {}).get("id") or (event or {}).get("team")
    return str(team) if team else None


async def _handle_mention(rt: Runtime, event: dict[str, Any], client: AsyncWebClient, *,
                          team: str | None = None) -> None:
    with span("intake", **{"intake.via": "slack_mention"}):
        await _mention(rt, event, client, team=team)


async def _mention(rt: Runtime, event: dict[str, Any], client: AsyncWebClient, *, team: str | None) -> None:
    channel, user = event["channel"], event.get("user")
    thread_ts = event.get("thread_ts")
    request = parse_request(event.get("text", ""), rt.catalog)
    reply_ts = thread_ts or event["ts"]
    if request.intent == "help":
        await client.chat_postMessage(channel=channel, thread_ts=reply_ts, text=HELP_TEXT)
        return
    if request.intent == "refresh":
        incident = await rt.store.incident_for_thread(channel=channel, thread_ts=thread_ts)
        if incident is None:
            await client.chat_postMessage(channel=channel, thread_ts=reply_ts,
                                          text="Which brief? Say `refresh` in the brief's thread.")
            return
        await refresh_brief(rt, incident.key, user, workspace=team)
        return
    service = request.service
    if service is None and thread_ts:
        incident = await rt.store.incident_for_thread(channel=channel, thread_ts=thread_ts)
        service = rt.catalog.get(incident.service) if incident else None
    monitor_id = monitor_id_in(request.link)
    if service is None and monitor_id is not None:
        service = await service_from_monitor(rt, monitor_id, user)
    service = service or rt.catalog.by_channel(channel)
    if service is None:
        names = ", ".join(f"`{n}`" for n in rt.catalog.names()) or "none configured"
        await client.chat_postMessage(channel=channel, thread_ts=reply_ts,
                                      text=f"Which service is this about? Known services: {names}.")
        return
    alert = Alert(via="slack_mention", title=clip(f"{service.name}: {request.text or 'brief requested'}", 200),
                  service=service.name, triggered_at=rt.now(), mention_text=request.text,
                  requested_by=user, workspace=team,
                  details={"monitor_id": monitor_id} if monitor_id is not None else {})
    await publish_brief(rt, alert, service, channel, thread_ts=reply_ts)


async def _open_ticket_modal(rt: Runtime, body: dict[str, Any], client: AsyncWebClient) -> None:
    user = body["user"]["id"]
    allowed, why = await may_approve(client, rt.policy, user)
    if not allowed:
        await _ephemeral(client, body, why)
        return
    meta = _action_meta(body)
    latest = await rt.store.get_brief(meta["incident_key"], int(meta["brief_version"]))
    proposal: TicketProposal | None = latest.result.brief.ticket if latest else None
    if latest is None or proposal is None:
        await _ephemeral(client, body, "This brief has no ticket proposal to file.")
        return
    # The approval holds exactly what the modal shows (description with the citations as links),
    # so every click on this brief finds the same approval and an unedited submit changes nothing.
    shown = proposal.model_copy(update={"summary": proposal.summary[:JIRA_SUMMARY_MAX],
                                        "description": ticket_description(proposal, latest.result.evidence)})
    approval = await rt.approvals.propose(incident_key=meta["incident_key"],
                                       brief_version=int(meta["brief_version"]), proposal=shown,
                                       requested_by=user, tool="jira.create_issue")
    if approval.state == "done":
        await _ephemeral(client, body, f"Already filed as {approval.jira_key}.")
        return
    await client.views_open(trigger_id=body["trigger_id"], view=ticket_modal(
        proposal, evidence=latest.result.evidence, allowed_projects=rt.jira_projects(),
        approval_id=approval.id, dry_run=rt.policy.default_mode == "dry_run",
        channel=body["channel"]["id"], message_ts=body["message"]["ts"]))


async def _file_ticket(rt: Runtime, meta: dict[str, Any], user: str, fields: TicketFields,
                       client: AsyncWebClient) -> None:
    outcome = await approve_and_file(rt, meta["approval_id"], user, fields)
    channel, ts = meta.get("channel"), meta.get("message_ts")
    if outcome.status == "preview" and channel:
        await client.chat_postEphemeral(channel=channel, user=user, text="Dry run: nothing was sent to Jira.",
                                        blocks=dry_run_preview_blocks(outcome.preview or {}))
        return
    if outcome.status in {"filed", "already_filed"} and channel and ts:
        await _show_ticket_on_card(rt, meta, channel, ts)
        return
    if channel and outcome.message:
        await client.chat_postEphemeral(channel=channel, user=user, text=escape(outcome.message))


async def _show_ticket_on_card(rt: Runtime, meta: dict[str, Any], channel: str, ts: str) -> None:
    approval = await rt.approvals.get(meta["approval_id"])
    await update_card(rt, approval.incident_key, channel=channel, ts=ts)


def _action_meta(body: dict[str, Any]) -> dict[str, Any]:
    value = body["actions"][0].get("value") or "{}"
    meta: dict[str, Any] = json.loads(value)
    return meta


def _ticket_fields(view: dict[str, Any]) -> TicketFields:
    values = view["state"]["values"]

    def pick(block: str) -> str:
        field: dict[str, Any] = next(iter(values.get(block, {}).values()), {})
        if "selected_option" in field:
            return str((field.get("selected_option") or {}).get("value", ""))
        return str(field.get("value") or "")

    return TicketFields(project=pick("project"), summary=pick("summary"), description=pick("description"),
                        priority=pick("priority") or "High")


def _first_value(view: dict[str, Any]) -> str:
    for block in view["state"]["values"].values():
        for field in block.values():
            if field.get("value"):
                return str(field["value"])
    return ""


async def _ephemeral(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    await client.chat_postEphemeral(channel=body["channel"]["id"], user=body["user"]["id"], text=text)
