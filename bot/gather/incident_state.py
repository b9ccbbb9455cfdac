"""Is a late-delivered incident still open? Asked of PagerDuty through the choke point.

A trigger can reach us hours after it fired: PagerDuty queues and retries deliveries for up to
48 hours while the bot is down. Briefing an incident that was resolved meanwhile would post a
card nobody needs, so the trigger's handler asks PagerDuty for the incident's current status
first (tool ``pagerduty.get_incident``: policy, timeout, redaction and an audit row, like every
read). When PagerDuty cannot answer, the brief is drafted anyway: a brief too many is cheaper
than a missed one, and the brief itself shows PagerDuty as a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.models import EvidenceKind, Source
from bot.gather.connectors import Connectors
from bot.gather.tools import ToolRunner

TOOL = "pagerduty.get_incident"
CLOSED_STATUSES = {"resolved"}


@dataclass(frozen=True)
class OpenCheck:
    brief: bool  # draft the brief?
    status: str | None  # the incident's status as PagerDuty reports it, when it answered
    reason: str  # the decision in words, for the log


async def late_trigger_check(runner: ToolRunner, connectors: Connectors, incident_id: str,
                             occurred_at: datetime) -> OpenCheck:
    """Whether to brief a trigger that arrived late: only when the incident is still open."""
    pagerduty = connectors.pagerduty
    if pagerduty is None:
        return OpenCheck(True, None, "PagerDuty is not configured: cannot check, briefing anyway")
    outcome = await runner.read(
        TOOL, Source.PAGERDUTY, lambda: pagerduty.incident(incident_id, with_alerts=False),
        args={"incident_id": incident_id, "purpose": "late trigger: is the incident still open?",
              "occurred_at": occurred_at.isoformat()})
    if outcome.gap is not None:
        return OpenCheck(True, None, f"PagerDuty could not say ({outcome.gap.reason}): briefing anyway")
    status = next((str(e.data.get("status")) for e in outcome.evidence if e.kind is EvidenceKind.INCIDENT
                   and e.data.get("incident_id") == incident_id), None)
    if status is None:
        return OpenCheck(True, None, "PagerDuty did not return the incident: briefing anyway")
    if status in CLOSED_STATUSES:
        return OpenCheck(False, status, f"incident is {status} by now: no brief for a closed incident")
    return OpenCheck(True, status, f"incident is still {status}: briefing")
