"""The error tree. Every failure the bot expects has a name here.

    IncidentBriefError
    ├── ConfigError            bad settings, catalog or policy file: refused at start-up
    ├── SourceUnavailable      a source could not be read (after retries): becomes a SourceGap
    │   └── WireRefused        a request outside a read connector's (method, path) allowlist
    ├── PolicyDenied           the policy says no to this tool for this actor
    ├── ApprovalRequired       a write tool was called without an approval record
    ├── BudgetExceeded         a model call would pass a spend limit or a step cap
    └── DraftFailed            a model answer could not be used (after repair): fall back
"""

from __future__ import annotations


class IncidentBriefError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(IncidentBriefError):
    pass


class SourceUnavailable(IncidentBriefError):
    """A source stayed unavailable; `reason` is short and safe to show in Slack."""

    def __init__(self, source: str, reason: str, tool: str | None = None) -> None:
        super().__init__(f"{tool or source}: {reason}")
        self.source = source
        self.tool = tool
        self.reason = reason


class WireRefused(SourceUnavailable):
    """Raised before a forbidden request leaves the process: read-only at the wire."""

    def __init__(self, source: str, method: str, path: str) -> None:
        super().__init__(source, f"refused {method} {path}: not in the read-only allowlist")
        self.method = method
        self.path = path


class PolicyDenied(IncidentBriefError):
    def __init__(self, tool: str, reason: str) -> None:
        super().__init__(f"{tool}: {reason}")
        self.tool = tool
        self.reason = reason


class ApprovalRequired(IncidentBriefError):
    def __init__(self, tool: str) -> None:
        super().__init__(f"{tool} needs an approval record before it can run")
        self.tool = tool


class BudgetExceeded(IncidentBriefError):
    pass


class DraftFailed(IncidentBriefError):
    pass
