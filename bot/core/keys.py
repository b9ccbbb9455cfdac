"""The incident key: the one name every row about an incident is filed under.

The incident row, its brief versions, every tool call and model call made for it, the
citation check of each brief, its approvals and its feedback all carry this key, so one
query finds the whole story of an incident. It is built here and nowhere else.
"""

from __future__ import annotations

from bot.core.models import Alert


def pagerduty_key(incident_id: str) -> str:
    """A PagerDuty incident is its own key: every trigger, retry and status change of it meets here."""
    return f"pd:{incident_id}"


def incident_key(alert: Alert, *, channel: str | None = None, thread_ts: str | None = None) -> str:
    """PagerDuty incidents by id; a request made in Slack (or at the CLI) by where it was asked:
    the channel, the thread (or ``channel`` for a top-level request) and the service."""
    if alert.incident_id:
        return pagerduty_key(alert.incident_id)
    return f"slack:{channel or 'cli'}:{thread_ts or 'channel'}:{alert.service}"
