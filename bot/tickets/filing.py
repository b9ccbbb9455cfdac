"""Filing the Jira ticket after approval: exactly once, through the write tool, audited.

The approval row is the lock: `claim_for_execution` is a compare-and-set, so concurrent
clicks, Slack retries and several replicas produce one winner. The winner first asks Jira
whether a ticket carrying this approval's idempotency label exists (a restart between create
and complete leaves exactly that), and only then creates one through `ToolRunner.write`.
What is filed is what was approved: the approval's stored proposal, never the request body.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.errors import ApprovalRequired, PolicyDenied, SourceUnavailable, WireRefused
from bot.core.redaction import redact
from bot.runtime import Runtime
from bot.store.approvals import Approval, ApprovalState, ApprovalStateError
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import annotate, span
from connectors.jira import JiraReader, JiraWriter

log = logging.getLogger("incident_brief.ticketing")
TOOL = "jira.create_issue"
RESOLVED_REFUSAL = "The incident is resolved: no ticket is filed from its brief."
# After a create whose answer never came (a client-side timeout, a dropped connection, a 5xx),
# Jira may have filed it anyway: look for the idempotency label at these delays (seconds)
# before saying anything, since search can trail a create by a moment.
LANDED_CHECKS_S = (0.0, 1.0, 2.0, 4.0)
_DEFINITE_REFUSAL = re.compile(r"HTTP 4\d\d")


@dataclass(frozen=True)
class TicketFields:
    project: str
    summary: str
    description: str
    priority: str

    @classmethod
    def from_proposal(cls, proposal: dict[str, Any]) -> TicketFields:
        return cls(project=str(proposal.get("project", "")), summary=str(proposal.get("summary", "")),
                   description=str(proposal.get("description", "")),
                   priority=str(proposal.get("priority") or "High"))


@dataclass(frozen=True)
class FileOutcome:
    status: str  # filed | already_filed | waiting_for_approver | lost_race | preview | refused | failed | uncertain
    key: str | None = None
    url: str | None = None
    preview: dict[str, Any] | None = None
    message: str = ""


def required_approvers(rt: Runtime) -> int:
    return 2 if rt.policy.approvals.get(TOOL, "required") == "two_person" else 1


async def approve_and_file(rt: Runtime, approval_id: str, approver: str, fields: TicketFields) -> FileOutcome:
    """One person's submit of the ticket modal: record their approval of these fields, and file
    the ticket once the policy's quorum is met."""
    with span("approval", **{"approval.id": approval_id}):
        outcome = await _approve_and_file(rt, approval_id, approver, fields)
        telemetry.approval(outcome.status, approval_id=approval_id)
        return outcome


async def _approve_and_file(rt: Runtime, approval_id: str, approver: str, fields: TicketFields) -> FileOutcome:
    if fields.project not in rt.jira_projects():
        return FileOutcome("refused", message=f"Project {fields.project} is not allowed by policy.")
    try:
        approval = await rt.approvals.get(approval_id)
        annotate(**{"incident.key": approval.incident_key})
        incident = await rt.store.get_incident(approval.incident_key)
        if incident is not None and incident.status == "resolved" and approval.state is not ApprovalState.DONE:
            return FileOutcome("refused", message=RESOLVED_REFUSAL)
        edited = TicketFields.from_proposal(approval.proposal) != fields
        if approval.state is ApprovalState.PROPOSED and edited:
            # Edited in the modal: approvals given to the old text no longer count.
            approval = await rt.approvals.revise(approval_id, {**approval.proposal, **fields.__dict__})
        approval = await rt.approvals.approve(approval_id, approver, forbid_self_approval=False,
                                              required_approvers=required_approvers(rt))
    except ApprovalStateError as exc:
        return FileOutcome("refused", message=str(exc))
    if approval.state is ApprovalState.PROPOSED:
        return FileOutcome("waiting_for_approver", message=(
            "Your approval is recorded. Policy needs a second approver (not the requester) before "
            "the ticket is filed."))
    if approval.state is ApprovalState.DONE:
        return FileOutcome("already_filed", key=approval.jira_key)
    claimed = await rt.approvals.claim_for_execution(approval_id)
    if claimed is None:
        return FileOutcome("lost_race", message="This ticket is already being filed.")
    return await execute(rt, claimed, approver)


async def execute(rt: Runtime, approval: Approval, actor: str) -> FileOutcome:
    """File the approved ticket for an approval claimed for execution (state ``executing``)."""
    with span("ticket", **{"incident.key": approval.incident_key, "approval.id": approval.id}):
        outcome = await _execute(rt, approval, actor)
        annotate(outcome=outcome.status, **{"ticket.key": outcome.key})
        return outcome


async def _execute(rt: Runtime, approval: Approval, actor: str) -> FileOutcome:
    fields = TicketFields.from_proposal(approval.proposal)
    label = approval.idempotency_key
    reader = JiraReader(rt.settings.jira)
    try:
        existing = await reader.find_by_label(label)
    except Exception as exc:  # cannot prove there is no ticket yet: do not risk a duplicate
        reason = redact(f"{type(exc).__name__}: {exc}")[:300]
        await rt.approvals.reset_to_approved(approval.id, claimed_before=rt.now() + timedelta(seconds=1))
        return FileOutcome("failed", message=f"Could not check Jira for an existing ticket: {reason}")
    finally:
        await _close(reader)
    if existing:
        found = existing if isinstance(existing, dict) else {"key": existing}
        key = str(found["key"])
        await rt.approvals.complete(approval.id, key)
        return FileOutcome("already_filed", key=key, url=found.get("url"))
    writer = JiraWriter(rt.settings.jira)
    runner = rt.runner(brief_key=approval.incident_key, actor=actor)
    try:
        preview = {"method": "POST", "path": "/rest/api/2/issue", "json": {"fields": writer.issue_fields(
            fields.project, fields.summary, fields.description, fields.priority, ["incident-brief", label])}}
        outcome = await runner.write(
            TOOL,
            lambda: writer.create_issue(fields.project, fields.summary, fields.description, fields.priority,
                                        ["incident-brief", label]),
            args={"project": fields.project, "approval_id": approval.id},
            approval=approval, preview=preview)
    except (PolicyDenied, ApprovalRequired) as exc:
        await rt.approvals.fail(approval.id, str(exc))
        return FileOutcome("refused", message=str(exc))
    except Exception as exc:
        reason = redact(f"{type(exc).__name__}: {exc}")[:300]
        if _definitely_not_created(exc):
            await rt.approvals.fail(approval.id, reason)
            return FileOutcome("failed", message=f"Jira did not accept the ticket: {reason}")
        return await _after_uncertain_create(rt, approval, reason)
    finally:
        await _close(writer)
    if not outcome.executed:
        await rt.approvals.fail(approval.id, "dry run: request shown, not sent")
        return FileOutcome("preview", preview=outcome.preview)
    result: dict[str, Any] = outcome.result or {}
    await rt.approvals.complete(approval.id, str(result["key"]))
    return FileOutcome("filed", key=str(result["key"]), url=result.get("url"))


def _definitely_not_created(exc: Exception) -> bool:
    """Whether Jira certainly did not file it: refused before sending (a bad argument, the wire
    guard) or answered with a 4xx. A timeout, a dropped connection or a 5xx may hide a create."""
    if isinstance(exc, ValueError | WireRefused):
        return True
    return isinstance(exc, SourceUnavailable) and bool(_DEFINITE_REFUSAL.match(exc.reason))


async def _after_uncertain_create(rt: Runtime, approval: Approval, reason: str) -> FileOutcome:
    """The create may have landed: look for it by its label before saying anything. Found, it
    is the ticket. Not found, the approval stays ``executing``, so recovery (`recover_interrupted`,
    run by the clock) looks again and files it only if it is still not there."""
    label = approval.idempotency_key
    for delay in LANDED_CHECKS_S:
        await asyncio.sleep(delay)
        reader = JiraReader(rt.settings.jira)
        try:
            found = await reader.find_by_label(label)
        except Exception:
            log.warning("looking for ticket %s after an uncertain create failed", label, exc_info=True)
            found = None
        finally:
            await _close(reader)
        if found:
            key = str(found["key"])
            await rt.approvals.complete(approval.id, key)
            log.warning("Jira create for approval %s failed client-side (%s) but landed as %s",
                        approval.id, reason, key)
            return FileOutcome("filed", key=key, url=found.get("url"))
    log.warning("Jira create for approval %s has an unknown outcome: %s", approval.id, reason)
    return FileOutcome("uncertain", message=(
        f"Jira did not answer in time ({reason}). The ticket may have been created: it was not found "
        f"yet under label {label}. Nothing will be filed twice: the bot looks for that label again "
        "within a few minutes and files the ticket only if it is not there."))


@dataclass(frozen=True)
class Recovered:
    """What recovery did with one approval: the approval as it was taken up, and the outcome."""

    approval: Approval
    outcome: FileOutcome


async def recover_interrupted(rt: Runtime, older_than: datetime) -> list[Recovered]:
    """Finish approvals whose executor died between claim and complete (a restart), or whose
    create had an unknown outcome (Jira did not answer in time). `execute` looks for the
    idempotency label in Jira first, so none is filed twice. Telling people is the caller's
    (`bot.slack.ticket_flow.tell_recovered`)."""
    recovered = []
    for stuck in await rt.approvals.recover_stuck(older_than):
        # One atomic step: of several replicas recovering at once, exactly one gets it back.
        claimed = await rt.approvals.reclaim_stuck(stuck.id, claimed_before=older_than)
        if claimed is not None:
            outcome = await execute(rt, claimed, actor="recovery")
            telemetry.approval(outcome.status, approval_id=claimed.id)
            recovered.append(Recovered(claimed, outcome))
    return recovered


async def _close(client: object) -> None:
    close = getattr(client, "aclose", None)
    if close is not None:
        await close()
