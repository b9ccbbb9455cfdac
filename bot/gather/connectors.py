"""The read connectors of one run: built from settings (or handed in by a test), closed after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.config import Settings
    from connectors.confluence import ConfluenceConnector
    from connectors.datadog import DatadogConnector
    from connectors.github import GitHubConnector
    from connectors.jira import JiraReader
    from connectors.pagerduty import PagerDutyConnector


@dataclass
class Connectors:
    """The read connectors for one run. Any may be absent (not configured)."""

    datadog: DatadogConnector | None = None
    github: GitHubConnector | None = None
    confluence: ConfluenceConnector | None = None
    pagerduty: PagerDutyConnector | None = None
    jira: JiraReader | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Connectors:
        # Imported here: each client library costs import time, and only a run that reads needs them.
        from connectors.confluence import ConfluenceConnector
        from connectors.datadog import DatadogConnector
        from connectors.github import GitHubConnector
        from connectors.jira import JiraReader
        from connectors.pagerduty import PagerDutyConnector

        return cls(
            datadog=DatadogConnector(settings.datadog),
            github=GitHubConnector(settings.github),
            confluence=ConfluenceConnector(settings.confluence),
            pagerduty=PagerDutyConnector(settings.pagerduty),
            jira=JiraReader(settings.jira),
        )

    async def aclose(self) -> None:
        for connector in (self.datadog, self.github, self.confluence, self.pagerduty, self.jira):
            close = getattr(connector, "aclose", None)
            if close is not None:
                await close()
