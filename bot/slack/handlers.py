"""Bolt listeners: each acks first (Slack's 3 s), then works in the background.

Listeners stay thin: they read the request (as the models of `bot.intake.slack_shapes`, which
the web gate has already checked it against), and call a flow (`bot.slack.publish`,
`bot.slack.ticket_flow`). Errors are shown where the person is (ephemeral, in the modal, or in
the thread of a mention), never swallowed. A click acts on the incident whose card it is, found
in the store, never on what the button's value or a modal's metadata claims.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.core.keys import incident_key
from bot.core.models import Alert
from bot.core.redaction import clip, redact
from bot.intake.mentions import HELP_TEXT, parse_request
from bot.intake.slack_shapes import AppMention, BlockActions, SlashCommand, ViewSubmission, feedback_metadata
from bot.runtime import Runtime
from bot.slack.blocks import feedback_reason_modal
from bot.slack.mrkdwn import escape
from bot.slack.publish import monitor_id_in, publish_brief, refresh_brief, service_from_monitor
from bot.slack.ticket_flow import NOT_THIS_CARD, card_of, check_submit, file_ticket, open_ticket_modal
from bot.store.repo import Vote
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import span

log = logging.getLogger("incident_brief.slack")


def register(app: AsyncApp, rt: Runtime) -> None:
    # The web gate (`bot.intake.slack_gate`) has verified and shape-checked every request before
    # a listener runs, so the models below validate; each listener acks before it does I/O.
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        mention = AppMention.model_validate(event)
        rt.spawn(_handle_mention(rt, mention, client, team=_team(body, event), event_id=body.get("event_id")),
                 name="mention")

    @app.command("/brief")
    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        asked = SlashCommand.model_validate(command)
        request = parse_request(asked.text, rt.catalog)
        service = request.service or rt.catalog.by_channel(asked.channel_id)
        if service is None:
            known = ", ".join(f"`{name}`" for name in rt.catalog.names()) or "none configured"
            await respond(f"Which service? Known services: {known}. Try `/brief <service>`.")
            return
        alert = Alert(via="slack_mention", title=f"{service.name}: brief requested", service=service.name,
                      triggered_at=rt.now(), mention_text=request.text, requested_by=asked.user_id,
                      workspace=asked.team_id)
        # Each /brief is its own request (Slack's trigger id); a retry of the same one posts once.
        request_id = asked.trigger_id or rt.now().timestamp()
        key = incident_key(alert, channel=asked.channel_id, thread_ts=f"cmd:{request_id}")
        rt.spawn(publish_brief(rt, alert, service, asked.channel_id, key=key), name="command")

    @app.action("ticket_create")
    async def on_ticket(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        await _telling(client, click, open_ticket_modal(rt, click, client))

    @app.action("brief_refresh")
    async def on_refresh(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        await _telling(client, click, _refresh(rt, click, client, team=_team(body)))

    @app.action("feedback_up")
    async def on_up(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        await _telling(client, click, _feedback(rt, click, client, "up"))

    @app.action("feedback_down")
    async def on_down(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        await _telling(client, click, _feedback(rt, click, client, "down"))

    @app.view("feedback_reason")
    async def on_feedback_reason(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        submission = ViewSubmission.model_validate(body)
        meta = feedback_metadata(submission.view)
        reason = submission.first_text()
        if reason and await rt.store.get_brief(meta.incident_key, meta.brief_version) is not None:
            await rt.store.save_feedback(incident_key=meta.incident_key, version=meta.brief_version,
                                         user=submission.user.id, vote="down", reason=redact(reason)[:500])

    @app.view("ticket_submit")
    async def on_ticket_submit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        submission = ViewSubmission.model_validate(body)
        try:
            errors, fields, approval_id = await check_submit(rt, submission, client)
        except Exception as exc:  # the store or Slack failed: say so in the modal, not with a 500
            log.exception("checking a ticket submit failed")
            await ack(response_action="errors", errors={"summary": f"Could not check this request: {_why(exc)}"})
            return
        if errors or fields is None or approval_id is None:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        rt.spawn(file_ticket(rt, approval_id, submission.user.id, fields, client), name="ticket")

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


async def _handle_mention(rt: Runtime, mention: AppMention, client: AsyncWebClient, *,
                          team: str | None = None, event_id: str | None = None) -> None:
    with span("intake", **{"intake.via": "slack_mention"}):
        try:
            # Slack redelivers a mention it thinks we missed (X-Slack-Retry-Num) with the same
            # event id: answered once, however many replicas receive the retries.
            if event_id and not await rt.store.record_webhook_delivery(f"event:{event_id}", source="slack"):
                log.info("slack event %s is a redelivery: already answered", event_id)
                return
            await _mention(rt, mention, client, team=team)
        except Exception as exc:
            await _tell_mention_failed(rt, mention, client, exc)
            raise


async def _tell_mention_failed(rt: Runtime, mention: AppMention, client: AsyncWebClient, exc: Exception) -> None:
    """Never silence: say in the thread what failed, unless the brief's own message already
    says it (`publish_brief` replaces its placeholder with the failure)."""
    if isinstance(exc, SQLAlchemyError):
        text = ("I could not record this request: the bot's database cannot be written "
                f"({type(exc).__name__}). Nothing was posted; ask whoever runs the bot to check "
                "`incident-brief doctor`, then mention me again.")
    else:
        text = f"I could not do that: {escape(redact(f'{type(exc).__name__}: {exc}')[:300])}"
    try:
        # A brief message that exists already carries the failure (publish replaced its placeholder).
        if not isinstance(exc, SQLAlchemyError) and await _brief_message_exists(rt, mention):
            return
        await client.chat_postMessage(channel=mention.channel, thread_ts=mention.thread_ts or mention.ts, text=text)
    except Exception:
        log.exception("could not tell %s in %s that the mention failed", mention.user, mention.channel)


async def _brief_message_exists(rt: Runtime, mention: AppMention) -> bool:
    found = await rt.store.incident_for_thread(channel=mention.channel, thread_ts=mention.thread_ts or mention.ts)
    return found is not None


async def _mention(rt: Runtime, mention: AppMention, client: AsyncWebClient, *, team: str | None) -> None:
    channel, user = mention.channel, mention.user
    thread_ts = mention.thread_ts
    request = parse_request(mention.text, rt.catalog)
    reply_ts = thread_ts or mention.ts
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


async def _telling(client: AsyncWebClient, click: BlockActions, work: Coroutine[Any, Any, None]) -> None:
    """Run a click's work; if it fails, tell the clicker what failed instead of nothing."""
    try:
        await work
    except Exception as exc:
        log.exception("handling %s for %s failed", click.actions[0].action_id, click.user.id)
        try:
            await _ephemeral(client, click, f"That did not work: {_why(exc)}. Nothing was filed or changed "
                                            "by this click; try again, or ask whoever runs the bot.")
        except Exception:
            log.exception("could not tell %s that their click failed", click.user.id)


def _why(exc: Exception) -> str:
    if isinstance(exc, SQLAlchemyError):
        return f"the bot's database is unavailable ({type(exc).__name__})"
    return escape(redact(f"{type(exc).__name__}: {exc}")[:300])


async def _refresh(rt: Runtime, click: BlockActions, client: AsyncWebClient, *, team: str | None) -> None:
    incident, refused = await card_of(rt, click)
    if incident is None:
        await _ephemeral(client, click, refused or NOT_THIS_CARD)
        return
    rt.spawn(refresh_brief(rt, incident.key, click.user.id, workspace=team), name="refresh")


async def _feedback(rt: Runtime, click: BlockActions, client: AsyncWebClient, vote: Vote) -> None:
    """Store a vote on the clicked card's brief version (a 👎 then asks why, in a modal); the
    person is told when the click does not belong to that card."""
    incident, refused = await card_of(rt, click)
    value = click.button()
    if incident is None or await rt.store.get_brief(incident.key, value.brief_version) is None:
        await _ephemeral(client, click, refused or "That brief version is not stored: nothing was recorded.")
        return
    await rt.store.save_feedback(incident_key=incident.key, version=value.brief_version, user=click.user.id,
                                 vote=vote, reason=None)
    telemetry.feedback(vote, incident=incident.key, version=value.brief_version)
    if vote == "up":
        await _ephemeral(client, click, "Thanks: noted 👍")
        return
    try:
        await client.views_open(trigger_id=click.trigger_id, view=feedback_reason_modal(
            incident_key=incident.key, brief_version=value.brief_version))
    except SlackApiError as exc:
        await _ephemeral(client, click, "Thanks: noted 👎 (the form for a reason could not be opened: "
                                        f"`{escape(str(exc.response.get('error', 'error')))}`).")


async def _ephemeral(client: AsyncWebClient, click: BlockActions, text: str) -> None:
    await client.chat_postEphemeral(channel=click.channel.id, user=click.user.id, text=text)
