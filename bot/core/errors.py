"""The error tree: every failure the bot raises on purpose, and where each one is caught.

    IncidentBriefError
    ├── ConfigError                 bad settings, catalog or policy file: refused at start-up
    │   ├── GatewayConfigError      (bot.gateway.gateway) a model route that is not pinned or priced
    │   └── ModelRefError           (bot.gateway.refs) not ``provider:model@version``
    ├── SourceUnavailable           a source could not be read (after retries): the choke point
    │   │                           (bot.gather.tools) turns it into a SourceGap in the brief
    │   └── WireRefused             a request outside a connector's (method, path) allowlist,
    │                               refused before a byte leaves the process
    ├── PolicyDenied                the policy says no to this write tool (bot.gather.tools)
    ├── ApprovalRequired            a write tool was called without an approval claimed for it
    ├── BudgetExceeded              a model request the gateway refused to make; the brief falls
    │   │                           back to the offline drafter and says why
    │   ├── SpendLimitReached       (bot.gateway.metered) it would pass a spend limit
    │   └── StepCapReached          (bot.gateway.metered) the brief's model-call cap is used up
    ├── ApprovalStateError          (bot.store.approvals) a transition the approval's state forbids
    │   └── SelfApprovalForbidden   the requester may not approve their own request
    ├── UnknownApproval             (bot.store.approvals) no approval with that id
    ├── UnknownRecord               (bot.store.repo) no such incident or brief version
    └── StoreBusy                   (bot.store.replicas.bounded) the store did not answer within
                                    the acknowledgement's bound: the webhook answers 503, retry

Outside the tree, on purpose: `sandbox.scenario.ScenarioError` (a scenario file, for the CLI's
scenario commands and the evals), and ValueError/TypeError for programming errors.
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
    """A model request refused before it was made; `outcome` names the rule for the audit row."""

    outcome = "budget"


class StoreBusy(IncidentBriefError):
    """The store did not answer within the bound: locked, out of connections, unreachable or
    refusing writes. `reason` is one redacted line, safe to put in an HTTP answer. Defined here
    (raised by `bot.store.replicas.bounded`) so the intake can answer it without importing the store."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
