"""Filing the Jira ticket after approval: exactly once, through the write tool, audited.

The approval row is the lock: `claim_for_execution` is a compare-and-set, so concurrent
clicks, Slack retries and several replicas produce one winner. The winner first asks Jira
whether a ticket with this approval's idempotency label exists (a restart between create
and complete leaves exactly that), and only then creates one through `ToolRunner.write`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot import approvals
from bot.errors import ApprovalRequired, PolicyDenied
from bot.redaction import redact
from bot.runtime import Runtime

log = logging.getLogger("incident_brief.ticketing")
TOOL = "jira.create_issue"


@dataclass(frozen=True)
class TicketFields:
    project: str
    summary: str
    description: str
    priority: str


@dataclass(frozen=True)
class FileOutcome:
    status: str  # filed | already_filed | waiting_for_approver | lost_race | preview | failed
    key: str | None = None
    url: str | None = None
    preview: dict[str, Any] | None = None
    message: str = ""


def idempotency_label(approval: approvals.Approval) -> str:
    return f"ib-{approval.idempotency_key}"


def jira_request(fields: TicketFields, label: str) -> dict[str, Any]:
    """The exact request body the write tool sends (shown as the dry-run preview)."""
    return {"method": "POST", "path": "/rest/api/2/issue", "json": {"fields": {
        "project": {"key": fields.project}, "summary": fields.summary, "description": fields.description,
        "issuetype": {"name": "Incident"}, "priority": {"name": fields.priority},
        "labels": ["incident-brief", label],
    }}}


async def approve_and_file(rt: Runtime, approval_id: str, approver: str, fields: TicketFields) -> FileOutcome:
    policy = rt.policy
    if fields.project not in policy.jira.allowed_projects:
        return FileOutcome("failed", message=f"project {fields.project} is not allowed by policy")
    rule = policy.approvals.get(TOOL, "required")
    approval = await approvals.approve(
        rt.store, approval_id, approver, required_approvers=2 if rule == "two_person" else 1)
    if approval.state == "proposed":
        return FileOutcome("waiting_for_approver",
                           message="Approved by you; a second approver (not the requester) is needed.")
    if approval.state == "done":
        return FileOutcome("already_filed", key=approval.jira_key)
    claimed = await approvals.claim_for_execution(rt.store, approval_id)
    if claimed is None:
        return FileOutcome("lost_race", message="another approval of this ticket is already being filed")
    return await _execute(rt, claimed, approver, fields)


async def _execute(rt: Runtime, approval: approvals.Approval, approver: str, fields: TicketFields) -> FileOutcome:
    from connectors.jira import JiraReader, JiraWriter

    label = idempotency_label(approval)
    existing = await JiraReader(rt.settings.jira).find_by_label(label)
    if existing:
        await approvals.complete(rt.store, approval.id, existing)
        return FileOutcome("already_filed", key=existing)
    request = jira_request(fields, label)
    writer = JiraWriter(rt.settings.jira)
    runner = rt.runner(brief_key=approval.incident_key, actor=approver)
    try:
        outcome = await runner.write(
            TOOL,
            lambda: writer.create_issue(fields.project, fields.summary, fields.description, fields.priority,
                                        ["incident-brief", label]),
            args={"project": fields.project, "approval_id": approval.id}, approval=approval, preview=request)
    except (PolicyDenied, ApprovalRequired) as exc:
        await approvals.fail(rt.store, approval.id, str(exc))
        return FileOutcome("failed", message=str(exc))
    except Exception as exc:
        reason = redact(f"{type(exc).__name__}: {exc}")[:300]
        await approvals.fail(rt.store, approval.id, reason)
        return FileOutcome("failed", message=f"Jira did not accept the ticket: {reason}")
    if not outcome.executed:
        await approvals.fail(rt.store, approval.id, "dry run: request shown, not sent")
        return FileOutcome("preview", preview=outcome.preview)
    result = outcome.result or {}
    await approvals.complete(rt.store, approval.id, str(result["key"]))
    return FileOutcome("filed", key=str(result["key"]), url=result.get("url"))
