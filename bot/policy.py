"""Policy as code: what the bot may do, decided from one reviewed file.

The file is the `agent_policy` YAML of the design (`config/policy.yaml`). It is validated with
pydantic at start-up; a bad file is refused with a message naming the key. `decide` answers
for one tool call: allow, needs approval, or deny, with the reason that goes into the audit
trail. The defaults are the safe ones: a tool nobody listed is denied, and a write tool is
never allowed without an approval unless the file explicitly says ``none``.

Pure: no I/O beyond reading the file in `load_policy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.errors import ConfigError

Mode = Literal["read_only", "dry_run", "execute"]
ApprovalRule = Literal["required", "two_person", "none"]
Outcome = Literal["allow", "needs_approval", "deny"]

READ_TOOLS: tuple[str, ...] = (
    "datadog.get_monitor", "datadog.get_dashboard", "datadog.query_metrics", "datadog.search_logs",
    "datadog.list_events", "github.list_deployments", "confluence.search", "pagerduty.get_incident",
    "pagerduty.list_incidents", "jira.search",
)
WRITE_TOOLS: tuple[str, ...] = ("jira.create_issue",)
KNOWN_TOOLS: tuple[str, ...] = READ_TOOLS + WRITE_TOOLS

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_POLICY = REPO_ROOT / "config" / "policy.yaml"
READ_ONLY_POLICY = REPO_ROOT / "config" / "policy.readonly.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Approvers(_Strict):
    users: list[str] = Field(default_factory=list)
    slack_user_groups: list[str] = Field(default_factory=list)


class JiraRules(_Strict):
    allowed_projects: list[str] = Field(default_factory=list)


class PiiRules(_Strict):
    redact: bool = True
    redact_prompts: bool = True
    log_retention_days: int = Field(default=30, gt=0, le=3650)


class SpendLimits(_Strict):
    per_user_usd_per_day: float = Field(default=2.0, ge=0)
    per_workspace_usd_per_month: float = Field(default=500.0, ge=0)


class StepCaps(_Strict):
    max_model_calls_per_brief: int = Field(default=3, ge=0, le=50)
    max_tool_calls_per_brief: int = Field(default=25, gt=0, le=500)


class Decision(_Strict):
    tool: str
    outcome: Outcome
    reason: str
    preview_only: bool = False


class Policy(_Strict):
    default_mode: Mode = "read_only"
    allowed_tools: list[str] = Field(default_factory=list)
    write_tools: list[str] = Field(default_factory=list)
    approvals: dict[str, ApprovalRule] = Field(default_factory=dict)
    approvers: Approvers = Field(default_factory=Approvers)
    jira: JiraRules = Field(default_factory=JiraRules)
    pii: PiiRules = Field(default_factory=PiiRules)
    spend_limits: SpendLimits = Field(default_factory=SpendLimits)
    steps: StepCaps = Field(default_factory=StepCaps)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        both = sorted(set(self.allowed_tools) & set(self.write_tools))
        if both:
            raise ValueError(f"listed as both allowed (read) and write tools: {', '.join(both)}")
        for tool in self.write_tools:
            if tool not in WRITE_TOOLS:
                raise ValueError(f"{tool!r} is not a known write tool (known: {', '.join(WRITE_TOOLS)})")
            if tool not in self.approvals:
                raise ValueError(f"write tool {tool!r} needs an `approvals` entry (required, two_person or none)")
        for tool in self.allowed_tools:
            if tool in WRITE_TOOLS:
                raise ValueError(f"{tool!r} is a write tool: list it under write_tools, not allowed_tools")
        for tool in self.approvals:
            if tool not in self.write_tools:
                raise ValueError(f"approvals names {tool!r}, which is not in write_tools")
        if "jira.create_issue" in self.write_tools and not self.jira.allowed_projects:
            raise ValueError("jira.create_issue is a write tool but jira.allowed_projects is empty")
        return self

    def decide(self, tool: str, actor: str | None = None, args: dict[str, Any] | None = None) -> Decision:
        """What this tool call gets. `actor` and `args` are for rules that look at them
        (the Jira project is checked here too, so no caller can forget it)."""
        del actor  # who asks does not change tool rights; approvers are checked at approval time
        if tool not in KNOWN_TOOLS:
            return Decision(tool=tool, outcome="deny", reason=f"unknown tool {tool!r}")
        if tool in READ_TOOLS:
            if tool in self.allowed_tools:
                return Decision(tool=tool, outcome="allow", reason="read tool listed in allowed_tools")
            return Decision(tool=tool, outcome="deny", reason="read tool not listed in allowed_tools")
        if tool not in self.write_tools:
            return Decision(tool=tool, outcome="deny", reason="write tool not listed in write_tools")
        if self.default_mode == "read_only":
            return Decision(tool=tool, outcome="deny", reason="policy is in read_only mode")
        project = (args or {}).get("project")
        if tool == "jira.create_issue" and project is not None and project not in self.jira.allowed_projects:
            return Decision(tool=tool, outcome="deny",
                            reason=f"Jira project {project!r} is not in jira.allowed_projects")
        preview = self.default_mode == "dry_run"
        rule = self.approvals.get(tool, "required")
        if rule == "none" and not preview:
            return Decision(tool=tool, outcome="allow", reason="write tool with approvals: none")
        why = {"required": "one approver", "two_person": "two approvers, not only the requester",
               "none": "no approver"}[rule]
        suffix = " (dry_run: preview only, nothing is sent)" if preview else ""
        return Decision(tool=tool, outcome="needs_approval", reason=f"write tool: needs {why}{suffix}",
                        preview_only=preview)

    def describe(self) -> str:
        return describe(self)


def describe(policy: Policy) -> str:
    """The effective policy and what each known tool would get, for `policy check`."""
    lines = [
        f"default_mode: {policy.default_mode}",
        f"approvers: users={policy.approvers.users or '[]'} "
        f"slack_user_groups={policy.approvers.slack_user_groups or '[]'}",
        f"jira.allowed_projects: {policy.jira.allowed_projects or '[]'}",
        f"pii: redact={policy.pii.redact} redact_prompts={policy.pii.redact_prompts} "
        f"log_retention_days={policy.pii.log_retention_days}",
        f"spend_limits: ${policy.spend_limits.per_user_usd_per_day:.2f}/user/day, "
        f"${policy.spend_limits.per_workspace_usd_per_month:.2f}/workspace/month",
        f"steps: {policy.steps.max_model_calls_per_brief} model calls, "
        f"{policy.steps.max_tool_calls_per_brief} tool calls per brief",
        "",
        f"{'tool':<26} {'decision':<15} reason",
    ]
    for tool in KNOWN_TOOLS:
        decision = policy.decide(tool, None, {})
        lines.append(f"{tool:<26} {decision.outcome:<15} {decision.reason}")
    return "\n".join(lines)


def parse_policy(raw: Any, origin: str) -> Policy:
    if not isinstance(raw, dict) or "agent_policy" not in raw:
        raise ConfigError(f"{origin}: expected a top-level `agent_policy:` mapping")
    extra = sorted(set(raw) - {"agent_policy"})
    if extra:
        raise ConfigError(f"{origin}: unknown top-level key(s): {', '.join(extra)}")
    try:
        return Policy.model_validate(raw["agent_policy"] or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in ("agent_policy", *first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{origin}: {where}: {message}") from exc


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; any problem is a `ConfigError` naming file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read policy file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_policy(raw, str(path))


def default_policy() -> Policy:
    """The bundled policy (reads allowed, the Jira write behind one approval)."""
    return load_policy(BUNDLED_POLICY)


def read_only_policy() -> Policy:
    return load_policy(READ_ONLY_POLICY)
