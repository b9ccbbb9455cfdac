"""The ticket proposal on the model path, when the brief came back without one.

A model may leave the brief's optional ``ticket`` out. When the brief has a cause to act on
and the service has a Jira project, the ``ticket`` task (a small model by default) drafts one
from the ticket prompt: the brief's headline and top cause, and the evidence packed again
under the same rules. The answer is checked like the brief's ticket (the service's own
project, known evidence ids only) and sent back once for repair. When the model path fails,
the proposal is built from the brief's own headline and cause, and the brief says so: a
person still gets something to review and approve, never a silently missing button.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from bot.core.models import Alert, Brief, CauseKind, Evidence, ServiceEntry, TicketProposal
from bot.draft.citations import unknown_ids
from bot.draft.offline import ticket_from_findings, ticket_summary
from bot.draft.prompts import render_ticket_prompt
from bot.gateway.gateway import Gateway, GatewayResult
from bot.gateway.metered import Caller, StepCounter

TICKET_TASK = "ticket"


def ticket_problems(ticket: TicketProposal, sent: Collection[str], jira_project: str | None) -> list[str]:
    """What is wrong with a proposed ticket, judged only against the evidence the model was shown."""
    problems: list[str] = []
    if jira_project is None or ticket.project != jira_project:
        problems.append(f"the ticket must be for project {jira_project or '(none: propose no ticket)'}, "
                        f"not {ticket.project!r}")
    if not ticket.citations or unknown_ids(ticket.citations, sent):
        problems.append("the ticket must cite known evidence ids only")
    if not ticket.summary.strip():
        problems.append("the ticket needs a one-line summary")
    return problems


def needs_ticket(brief: Brief, service: ServiceEntry) -> bool:
    cause = brief.top_cause
    return (brief.ticket is None and service.jira_project is not None
            and cause is not None and cause.kind != CauseKind.UNKNOWN)


@dataclass
class TicketDraft:
    ticket: TicketProposal | None
    result: GatewayResult[TicketProposal] | None = None  # None when no model was asked
    notes: list[str] = field(default_factory=list)


async def propose_ticket(gateway: Gateway, brief: Brief, *, alert: Alert, service: ServiceEntry,
                         evidence: list[Evidence], caller: Caller, steps: StepCounter) -> TicketDraft:
    """The brief's ticket, or one drafted by the ``ticket`` task, or one built from the brief."""
    cause = brief.top_cause
    if not needs_ticket(brief, service) or cause is None:
        return TicketDraft(brief.ticket)
    prompt = render_ticket_prompt(service, brief.headline.text, cause.claim.text, evidence, alert,
                                  budget_tokens=gateway.settings.evidence_token_budget)
    sent = set(prompt.packed.included)
    result = await gateway.run(TICKET_TASK, prompt, TicketProposal, caller=caller, steps=steps,
                               validate=lambda ticket: ticket_problems(ticket, sent, service.jira_project))
    notes = [f"ticket {note}" for note in result.notes()]
    if result.output is not None:
        return TicketDraft(result.output, result, notes)
    summary = ticket_summary(service, brief.headline.text)
    fallback = ticket_from_findings(alert, service, brief.headline, cause, evidence, summary=summary)
    notes.append(f"Ticket proposed from the brief without a model: {result.fallback_reason}")
    return TicketDraft(fallback, result, notes)
