"""Filing a ticket from a brief's card: the click that opens the modal, and its submit.

Every step that acts re-checks, against the store and Slack, what the request claims:

- the clicked message must be the card the store holds for that incident (a forged button
  value naming another incident is refused), and the card that is updated afterwards is the
  store's, never the modal's metadata or the button's;
- the person must be an approver (the policy's users and Slack user groups) when the modal
  opens and again when it is submitted: a forged or replayed ``view_submission`` from anyone
  else files nothing and does not count towards a two-person quorum, and an approver removed
  from the group after opening the modal can no longer file;
- a resolved incident files nothing.

Whatever happens, the person is told: an ephemeral message, or an error in the modal. When the
clock's recovery settles a filing that was cut off or whose create had no answer in time (the
person was told the ticket "may have been created"), the card is updated as after a live filing
and a reply in its thread names the ticket and the approvers (`tell_recovered`).
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.models import TicketProposal
from bot.intake.slack_shapes import BlockActions, ViewSubmission, ticket_metadata
from bot.runtime import Runtime
from bot.slack.approvers import may_approve
from bot.slack.blocks import JIRA_SUMMARY_MAX, dry_run_preview_blocks, ticket_description, ticket_modal
from bot.slack.mrkdwn import escape, user_mention
from bot.slack.publish import update_card
from bot.store.approvals import ApprovalState, UnknownApproval
from bot.store.repo import IncidentRecord
from bot.tickets.filing import RESOLVED_REFUSAL, FileOutcome, Recovered, TicketFields, approve_and_file

log = logging.getLogger("incident_brief.slack.tickets")
NOT_THIS_CARD = "This button does not belong to this brief's message: nothing was done."


async def card_of(rt: Runtime, click: BlockActions) -> tuple[IncidentRecord | None, str | None]:
    """The incident whose card was clicked, or why the click is refused. The button's value
    names an incident; the store says where that incident's card is, and it must be the
    message that was clicked."""
    value = click.button()
    incident = await rt.store.get_incident(value.incident_key)
    if incident is None or (incident.channel, incident.message_ts) != (click.channel.id, click.message.ts):
        log.warning("click by %s on %s/%s names %s, whose card is elsewhere: refused", click.user.id,
                    click.channel.id, click.message.ts, value.incident_key)
        return None, NOT_THIS_CARD
    return incident, None


async def open_ticket_modal(rt: Runtime, click: BlockActions, client: AsyncWebClient) -> None:
    incident, refused = await card_of(rt, click)
    if incident is None:
        await _tell(client, click.channel.id, click.user.id, refused or NOT_THIS_CARD)
        return
    if incident.status == "resolved":
        await _tell(client, click.channel.id, click.user.id, RESOLVED_REFUSAL)
        return
    allowed, why = await may_approve(client, rt.policy, click.user.id)
    if not allowed:
        await _tell(client, click.channel.id, click.user.id, why)
        return
    value = click.button()
    latest = await rt.store.get_brief(incident.key, value.brief_version)
    proposal: TicketProposal | None = latest.result.brief.ticket if latest else None
    if latest is None or proposal is None:
        await _tell(client, click.channel.id, click.user.id, "This brief has no ticket proposal to file.")
        return
    filed = [a for a in await rt.approvals.list_for_incident(incident.key) if a.state is ApprovalState.DONE]
    if filed:  # the card drops its button once a ticket is filed; a stale client may still click
        await _tell(client, click.channel.id, click.user.id,
                    f"A ticket was already filed for this incident: {filed[-1].jira_key}. Nothing was filed.")
        return
    # The approval holds exactly what the modal shows (description with the citations as links);
    # it is the brief version's one approval, whatever is edited later.
    shown = proposal.model_copy(update={"summary": proposal.summary[:JIRA_SUMMARY_MAX],
                                        "description": ticket_description(proposal, latest.result.evidence)})
    approval = await rt.approvals.propose(incident_key=incident.key, brief_version=value.brief_version,
                                          proposal=shown, requested_by=click.user.id, tool="jira.create_issue")
    if approval.state is ApprovalState.DONE:
        await _tell(client, click.channel.id, click.user.id, f"Already filed as {approval.jira_key}.")
        return
    evidence = latest.result.evidence
    if approval.edited:
        # Someone edited it already (a first approver under a two-person rule): show what they
        # approved, its description already carrying the evidence links, so the next approver
        # approves that text instead of silently reverting it to the brief's.
        proposal, evidence = TicketProposal.model_validate({**shown.model_dump(), **approval.proposal}), []
    try:
        await client.views_open(trigger_id=click.trigger_id, view=ticket_modal(
            proposal, evidence=evidence, allowed_projects=rt.jira_projects(),
            approval_id=approval.id, dry_run=rt.policy.default_mode == "dry_run"))
    except Exception as exc:  # Slack refused (SlackApiError) or could not be reached
        error = str(exc.response.get("error", "error")) if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning("views.open for %s failed: %s", incident.key, error)
        await _tell(client, click.channel.id, click.user.id,
                    f"Could not open the ticket form (Slack said `{escape(error)}`). Nothing was filed; "
                    "click *Create Jira ticket* again.")


async def check_submit(rt: Runtime, submission: ViewSubmission,
                       client: AsyncWebClient) -> tuple[dict[str, str], TicketFields | None, str | None]:
    """What is wrong with a ticket modal's submit, as Slack's per-field errors; else the fields
    to file and the approval id. Runs before the ack, so the person sees why in the modal."""
    fields = TicketFields(project=submission.text("project"), summary=submission.text("summary"),
                          description=submission.text("description"),
                          priority=submission.text("priority") or "High")
    approval_id = ticket_metadata(submission.view).approval_id
    if fields.project not in rt.jira_projects():
        return {"project": "Not an allowed project."}, None, None
    if not fields.summary.strip():
        return {"summary": "A summary is required."}, None, None
    try:
        approval = await rt.approvals.get(approval_id)
    except UnknownApproval:
        return {"summary": "This form is out of date: open it again from the brief."}, None, None
    incident = await rt.store.get_incident(approval.incident_key)
    if incident is not None and incident.status == "resolved":
        return {"summary": RESOLVED_REFUSAL}, None, None
    # Who submits is re-checked here, not only when the modal opened: the submit is what acts.
    allowed, why = await may_approve(client, rt.policy, submission.user.id)
    if not allowed:
        log.warning("ticket submit for approval %s by %s refused: %s", approval_id, submission.user.id, why)
        return {"summary": why[:300]}, None, None
    return {}, fields, approval_id


async def file_ticket(rt: Runtime, approval_id: str, user: str, fields: TicketFields,
                      client: AsyncWebClient) -> None:
    """File (or preview) after an accepted submit, then tell the person and update the card,
    both where the store says the incident's card is."""
    try:
        outcome = await approve_and_file(rt, approval_id, user, fields)
    except Exception as exc:  # the store failed mid-way: the label check makes a retry safe
        log.exception("filing approval %s failed", approval_id)
        outcome = FileOutcome("failed", message=(
            f"Filing failed: {type(exc).__name__}. If Jira created the ticket, the bot finds it by its "
            "label and records it; nothing will be filed twice."))
    approval = await rt.approvals.get(approval_id)
    incident = await rt.store.get_incident(approval.incident_key)
    channel, ts = (incident.channel, incident.message_ts) if incident else (None, None)
    if outcome.status == "preview" and channel:
        await client.chat_postEphemeral(channel=channel, user=user, text="Dry run: nothing was sent to Jira.",
                                        blocks=dry_run_preview_blocks(outcome.preview or {}))
        return
    if outcome.status in {"filed", "already_filed"} and channel and ts:
        await update_card(rt, approval.incident_key, channel=channel, ts=ts)
    if channel and outcome.message:
        await client.chat_postEphemeral(channel=channel, user=user, text=escape(outcome.message))


async def tell_recovered(rt: Runtime, recovered: Recovered) -> None:
    """Show what recovery settled where people look: a filed (or found) ticket updates the card
    (its key shown, the button gone) and is named in the card's thread, the approvers mentioned;
    a refusal or failure is said there too. An outcome still unknown says nothing new: the
    person was told so at the time, and recovery looks again on its next run."""
    approval, outcome = recovered.approval, recovered.outcome
    incident = await rt.store.get_incident(approval.incident_key)
    if incident is None or not incident.channel or not incident.message_ts:
        log.warning("recovered approval %s (%s) has no card to show it on", approval.id, outcome.status)
        return
    who = ", ".join(user_mention(user) for user in approval.approvers or [approval.requested_by or ""] if user)
    by = f", approved by {who}" if who else ""
    if outcome.status in {"filed", "already_filed"} and outcome.key:
        text = (f"🎫 Jira ticket *{escape(outcome.key)}* is filed{by}. Filing was cut off or Jira answered "
                "too late; the bot checked Jira for the ticket's label and recorded it, so nothing is filed twice.")
        try:
            await update_card(rt, approval.incident_key, channel=incident.channel, ts=incident.message_ts)
        except Exception:  # the ticket is recorded either way: say it in the thread all the same
            log.warning("could not show ticket %s on the card of %s", outcome.key, approval.incident_key,
                        exc_info=True)
            text += (" Slack did not let the bot update the brief, so its button may still show: a click on it "
                     "is told this ticket and files nothing.")
    elif outcome.status in {"failed", "refused"}:
        text = (f"The ticket{by} was not filed: {escape(outcome.message)} "
                "Click *Create Jira ticket* on the brief to try again.")
    else:
        return
    await rt.slack.chat_postMessage(channel=incident.channel, thread_ts=incident.message_ts, text=text)


async def _tell(client: AsyncWebClient, channel: str, user: str, text: str) -> None:
    await client.chat_postEphemeral(channel=channel, user=user, text=text)
