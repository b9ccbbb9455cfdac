"""Policy as code: what the bot may do, decided from one reviewed file.

The file is the `agent_policy` YAML of the design (`config/policy.yaml`). It is validated with
pydantic at start-up; a bad file is refused with a message naming the key. `decide` answers
for one tool call: allow, needs approval, or deny, with the reason that goes into the audit
trail. The defaults are the safe ones: a tool nobody listed is denied, and a write tool is
never allowed without an approval unless the file explicitly says ``none`` in ``execute`` mode.

The modes: ``read_only`` (the default) means the bot writes nothing by itself: a listed write
tool runs only after a person approves it. ``dry_run`` shows each write and sends none.
``execute`` runs writes under their approval rule, ``none`` included. Legal but surprising
choices are not errors: `warnings` names them and ``policy check`` prints them.

Pure: no I/O beyond reading the file in `load_policy`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Hashable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.core.errors import ConfigError

Mode = Literal["read_only", "dry_run", "execute"]
ApprovalRule = Literal["required", "two_person", "none"]
Outcome = Literal["allow", "needs_approval", "deny"]

# Reads only `doctor` makes (PagerDuty's services, to compare with the catalog); no brief does.
DOCTOR_TOOLS: tuple[str, ...] = ("pagerduty.list_services",)
READ_TOOLS: tuple[str, ...] = (
    "datadog.get_monitor", "datadog.get_dashboard", "datadog.query_metrics", "datadog.search_logs",
    "datadog.list_events", "github.list_deployments", "confluence.search", "pagerduty.get_incident",
    "pagerduty.list_incidents", "jira.search", *DOCTOR_TOOLS,
)
WRITE_TOOLS: tuple[str, ...] = ("jira.create_issue",)
KNOWN_TOOLS: tuple[str, ...] = READ_TOOLS + WRITE_TOOLS

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_POLICY = REPO_ROOT / "config" / "policy.yaml"
READ_ONLY_POLICY = REPO_ROOT / "config" / "policy.readonly.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_wildcards(values: list[str], what: str) -> list[str]:
    """Each entry names one thing: "*" would silently mean everyone (or every project), and an
    empty entry nothing; both are mistakes a reviewer can miss, so both are refused."""
    for index, value in enumerate(values):
        if not value.strip():
            raise ValueError(f"[{index}] is empty: each entry names one {what}")
        if "*" in value or "?" in value:
            raise ValueError(f"[{index}] {value!r}: wildcards are not supported, list each {what} "
                             "(an empty list has its own documented meaning)")
    return values


class Approvers(_Strict):
    users: list[str] = Field(default_factory=list)
    slack_user_groups: list[str] = Field(default_factory=list)

    @field_validator("users")
    @classmethod
    def _users(cls, value: list[str]) -> list[str]:
        return _no_wildcards(value, "Slack user id (U…)")

    @field_validator("slack_user_groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return _no_wildcards(value, "Slack user group")


_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,9}")


class JiraRules(_Strict):
    allowed_projects: list[str] = Field(default_factory=list)

    @field_validator("allowed_projects")
    @classmethod
    def _projects(cls, value: list[str]) -> list[str]:
        _no_wildcards(value, "Jira project key")
        for index, key in enumerate(value):
            if not _PROJECT_KEY.fullmatch(key):
                raise ValueError(f"[{index}] {key!r} is not a Jira project key (A-Z, digits, _; up to 10)")
        return value


class PiiRules(_Strict):
    # Masking cannot be switched off: secrets and PII are masked on the way in, before anything
    # is stored, logged, posted or sent (docs/redaction.md). `false` is refused rather than
    # accepted and ignored, so the file never says something the bot does not do.
    redact: bool = True
    redact_prompts: bool = True
    log_retention_days: int = Field(default=30, gt=0, le=3650)

    @field_validator("redact")
    @classmethod
    def _always(cls, value: bool) -> bool:
        if not value:
            raise ValueError("false is not supported: secrets and PII are always masked before anything is "
                             "stored, logged, posted or sent; remove the key or set it true")
        return value


class SpendLimits(_Strict):
    # allow_inf_nan=False: ".inf" would be no limit at all and ".nan" compares false with everything.
    per_user_usd_per_day: float = Field(default=2.0, ge=0, allow_inf_nan=False)
    per_workspace_usd_per_month: float = Field(default=500.0, ge=0, allow_inf_nan=False)


class StepCaps(_Strict):
    max_model_calls_per_brief: int = Field(default=3, ge=0, le=50)
    max_tool_calls_per_brief: int = Field(default=25, gt=0, le=500)


# The sources a `timing.source_timeout_s` entry may name (the read tools' prefixes).
TIMED_SOURCES: tuple[str, ...] = ("datadog", "github", "confluence", "pagerduty", "jira")


class Timing(_Strict):
    """How long a brief waits, all in one place (issue 10: a brief never waits for the slowest
    source). `first_post_s`: the first version of the brief is posted this long after the bot
    takes up the trigger, with whatever is in and the rest marked pending; later versions
    replace it in place. `source_timeout_s`: the most a source may take (retries included)
    before it becomes a gap; `default` applies to a source not named. When a policy has no
    `default`, the deployment's `IB_SOURCE_TIMEOUT_S` setting supplies it."""

    first_post_s: float = Field(default=4.0, gt=0, le=60)
    source_timeout_s: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_sources(self) -> Timing:
        for name, seconds in self.source_timeout_s.items():
            if name != "default" and name not in TIMED_SOURCES:
                raise ValueError(f"source_timeout_s.{name}: unknown source {name!r} "
                                 f"(one of default, {', '.join(TIMED_SOURCES)})")
            if not 0 < seconds <= 600:
                raise ValueError(f"source_timeout_s.{name}: {seconds!r} is not between 0 and 600 seconds")
        return self

    def timeout_for(self, source: str, fallback: float) -> float:
        """The timeout of one source: its own entry, else `default`, else `fallback` (settings)."""
        return self.source_timeout_s.get(source, self.source_timeout_s.get("default", fallback))

    def slowest_timeout(self, fallback: float) -> float:
        return max(self.timeout_for(source, fallback) for source in TIMED_SOURCES)


class StormRules(_Strict):
    """Alert storms: alerts for one `group_by` key within `window_s` of the first become one
    incident thread (later ones reply in the first one's thread instead of a new brief); at most
    `max_concurrent_briefs` briefs are drafted at once per replica, the rest wait their turn."""

    group_by: Literal["service", "off"] = "service"
    window_s: int = Field(default=600, ge=0, le=86_400)
    max_concurrent_briefs: int = Field(default=4, ge=1, le=64)


class Decision(_Strict):
    tool: str
    outcome: Outcome
    reason: str
    preview_only: bool = False


def _did_you_mean(tool: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(tool, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _inconsistencies(policy: Policy) -> list[str]:
    """Each problem as "key: message", so the error names the key to fix. A typo in a tool name
    is an error, not a silent deny: nobody would notice the missing read until an incident."""
    problems: list[str] = []
    for field in ("allowed_tools", "write_tools"):
        tools: list[str] = getattr(policy, field)
        for index, tool in enumerate(tools):
            if tool in tools[:index]:
                problems.append(f"{field}[{index}]: {tool!r} is listed twice")
    for index, tool in enumerate(policy.allowed_tools):
        if tool in policy.write_tools:
            problems.append(f"allowed_tools[{index}]: {tool!r} is listed as both a read and a write tool")
        elif tool in WRITE_TOOLS:
            problems.append(f"allowed_tools[{index}]: {tool!r} is a write tool: list it under write_tools, "
                            "not allowed_tools")
        elif tool not in READ_TOOLS:
            problems.append(f"allowed_tools[{index}]: unknown tool {tool!r}{_did_you_mean(tool, KNOWN_TOOLS)}")
    for index, tool in enumerate(policy.write_tools):
        if tool not in WRITE_TOOLS:
            kind = "a read tool, list it under allowed_tools" if tool in READ_TOOLS else "not a known write tool"
            problems.append(f"write_tools[{index}]: {tool!r} is {kind} (write tools: {', '.join(WRITE_TOOLS)})")
        elif tool not in policy.approvals:
            problems.append(f"approvals.{tool}: write tool {tool!r} needs an `approvals` entry "
                            "(required, two_person or none)")
    for tool in policy.approvals:
        if tool not in policy.write_tools:
            problems.append(f"approvals.{tool}: names {tool!r}, which is not in write_tools")
    needs_approver = [t for t in policy.write_tools if policy.approvals.get(t, "required") != "none"]
    # read_only without a list: any full member of the workspace approves (a warning says so).
    if (needs_approver and policy.default_mode != "read_only"
            and not policy.approvers.users and not policy.approvers.slack_user_groups):
        problems.append(f"approvers: {', '.join(needs_approver)} needs an approval but no approver is listed "
                        "(approvers.users or approvers.slack_user_groups)")
    return problems


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
    timing: Timing = Field(default_factory=Timing)
    storms: StormRules = Field(default_factory=StormRules)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        problems = _inconsistencies(self)
        if problems:
            # One "key: message" per line; `parse_policy` prefixes each key with `agent_policy.`.
            raise ValueError("\n".join(problems))
        return self

    def jira_projects(self, catalog_projects: Collection[str] = ()) -> list[str]:
        """Where `jira.create_issue` may file: `jira.allowed_projects` when the file lists any,
        else the Jira projects of the catalog's services."""
        return list(self.jira.allowed_projects) if self.jira.allowed_projects else sorted(set(catalog_projects))

    def decide(self, tool: str, actor: str | None = None, args: dict[str, Any] | None = None, *,
               catalog_projects: Collection[str] = ()) -> Decision:
        """What this tool call gets. `actor` and `args` are for rules that look at them (the Jira
        project is checked here too, so no caller can forget it); `catalog_projects` are the
        catalog's Jira projects, where tickets may go unless `jira.allowed_projects` narrows them."""
        del actor  # who asks does not change tool rights; approvers are checked at approval time
        if tool not in KNOWN_TOOLS:
            return Decision(tool=tool, outcome="deny", reason=f"unknown tool {tool!r}")
        if tool in READ_TOOLS:
            if tool in self.allowed_tools:
                return Decision(tool=tool, outcome="allow", reason="read tool listed in allowed_tools")
            return Decision(tool=tool, outcome="deny", reason="read tool not listed in allowed_tools")
        if tool not in self.write_tools:
            return Decision(tool=tool, outcome="deny", reason="write tool not listed in write_tools")
        project = (args or {}).get("project")
        if tool == "jira.create_issue" and project is not None:
            refused = self._project_refusal(str(project), catalog_projects)
            if refused:
                return Decision(tool=tool, outcome="deny", reason=refused)
        rule = self.approvals.get(tool, "required")
        if self.default_mode == "read_only" and rule == "none":
            return Decision(tool=tool, outcome="deny",
                            reason="policy is in read_only mode: a write needs an approval, and approvals is none")
        preview = self.default_mode == "dry_run"
        if rule == "none":
            # Explicitly no approver; dry_run still only previews.
            return Decision(tool=tool, outcome="allow", preview_only=preview,
                            reason="write tool with approvals: none" + (" (dry_run: preview only)" if preview else ""))
        why = {"required": "one approver", "two_person": "two approvers, not only the requester",
               "none": "no approver"}[rule]
        suffix = {"dry_run": " (dry_run: preview only, nothing is sent)",
                  "read_only": " (read_only: nothing is written unless a person approves)"}.get(self.default_mode, "")
        return Decision(tool=tool, outcome="needs_approval", reason=f"write tool: needs {why}{suffix}",
                        preview_only=preview)

    def _project_refusal(self, project: str, catalog_projects: Collection[str]) -> str | None:
        if self.jira.allowed_projects:
            if project not in self.jira.allowed_projects:
                return f"Jira project {project!r} is not in jira.allowed_projects"
            return None
        if project not in catalog_projects:
            return (f"Jira project {project!r} is not the project of any service in the catalog "
                    "(jira.allowed_projects is empty)")
        return None

    def describe(self, catalog_projects: Collection[str] | None = None) -> str:
        return describe(self, catalog_projects)


def _projects_line(policy: Policy, catalog_projects: Collection[str] | None) -> str:
    if policy.jira.allowed_projects:
        return f"jira.allowed_projects: {policy.jira.allowed_projects}"
    if catalog_projects is None:
        return "jira.allowed_projects: [] (tickets go to the Jira project of a catalog service)"
    return f"jira.allowed_projects: [] (the catalog's projects: {sorted(set(catalog_projects)) or 'none'})"


def describe(policy: Policy, catalog_projects: Collection[str] | None = None) -> str:
    """The effective policy and what each known tool would get, for `policy check`."""
    lines = [
        f"default_mode: {policy.default_mode}",
        f"approvers: users={policy.approvers.users or '[]'} "
        f"slack_user_groups={policy.approvers.slack_user_groups or '[]'}",
        _projects_line(policy, catalog_projects),
        f"pii: redact={policy.pii.redact} redact_prompts={policy.pii.redact_prompts} "
        f"log_retention_days={policy.pii.log_retention_days}",
        f"spend_limits: ${policy.spend_limits.per_user_usd_per_day:.2f}/user/day, "
        f"${policy.spend_limits.per_workspace_usd_per_month:.2f}/workspace/month",
        f"steps: {policy.steps.max_model_calls_per_brief} model calls, "
        f"{policy.steps.max_tool_calls_per_brief} tool calls per brief",
        f"timing: first post after {policy.timing.first_post_s:g} s; source timeouts "
        f"{policy.timing.source_timeout_s or '(IB_SOURCE_TIMEOUT_S for every source)'}",
        "",
        f"{'tool':<26} {'decision':<15} reason",
    ]
    for tool in KNOWN_TOOLS:
        decision = policy.decide(tool, None, {})
        lines.append(f"{tool:<26} {decision.outcome:<15} {decision.reason}")
    return "\n".join(lines)


def _denied_reads_effect(denied: list[str]) -> str:
    """What denying these reads does: a brief's reads become gaps, a doctor-only read skips its check."""
    effects = []
    if any(tool not in DOCTOR_TOOLS for tool in denied):
        effects.append("briefs show them as source gaps")
    if doctor_only := [tool for tool in denied if tool in DOCTOR_TOOLS]:
        effects.append(f"doctor skips the check that needs {', '.join(doctor_only)}")
    return "; ".join(effects)


def warnings(policy: Policy, catalog_projects: Collection[str] | None = None) -> list[str]:
    """Choices that are legal but may not mean what the author thinks, each as "key: why".
    `catalog_projects` (None: no catalog at hand) makes the Jira project warnings concrete."""
    found: list[str] = []
    denied_reads = [tool for tool in READ_TOOLS if tool not in policy.allowed_tools]
    if policy.allowed_tools and denied_reads:
        found.append(f"allowed_tools: {len(denied_reads)} read tool(s) are not listed and are denied "
                     f"({', '.join(denied_reads)}); {_denied_reads_effect(denied_reads)}")
    for tool in policy.write_tools:
        rule = policy.approvals.get(tool, "required")
        if policy.default_mode == "read_only" and rule == "none":
            found.append(f"approvals.{tool}: none in read_only mode: the write is always denied "
                         "(read_only writes only behind an approval)")
        elif policy.default_mode == "read_only":
            found.append(f"default_mode: read_only still lets {tool} run, each time a person approves it "
                         "(remove it from write_tools for no writes at all)")
        elif policy.default_mode == "execute" and rule == "none":
            found.append(f"approvals.{tool}: none in execute mode: the write runs without anyone approving it")
        if rule == "two_person" and not policy.approvers.slack_user_groups and len(policy.approvers.users) < 2:
            found.append(f"approvals.{tool}: two_person, but fewer than two approvers are listed: "
                         "nobody can complete the approval")
    needs_person = [t for t in policy.write_tools if policy.decide(t).outcome == "needs_approval"]
    if needs_person and not policy.approvers.users and not policy.approvers.slack_user_groups:
        found.append(f"approvers: none listed: any full member of the Slack workspace (not a guest, not a bot) "
                     f"may approve {', '.join(needs_person)}")
    if "jira.create_issue" in policy.write_tools:
        found += _project_warnings(policy, catalog_projects)
    if not policy.pii.redact_prompts:
        found.append("pii.redact_prompts: false: prompts are not masked again before they reach the model")
    if policy.spend_limits.per_user_usd_per_day == 0 or policy.spend_limits.per_workspace_usd_per_month == 0:
        found.append("spend_limits: a limit of 0 refuses every model call: briefs are drafted offline")
    if policy.steps.max_model_calls_per_brief == 0:
        found.append("steps.max_model_calls_per_brief: 0 refuses every model call: briefs are drafted offline")
    if policy.pii.log_retention_days > 365:
        found.append(f"pii.log_retention_days: audit rows are kept {policy.pii.log_retention_days} days "
                     "(more than a year)")
    return found


def _project_warnings(policy: Policy, catalog_projects: Collection[str] | None) -> list[str]:
    if policy.jira.allowed_projects:
        outside = sorted(set(policy.jira.allowed_projects) - set(catalog_projects or ()))
        if catalog_projects is not None and outside:
            return [f"jira.allowed_projects: no catalog service has {', '.join(outside)} as its project: tickets "
                    "go there only when a person picks it in the ticket modal"]
        return []
    if catalog_projects is None:
        return ["jira.allowed_projects: empty: tickets may be filed into the Jira project of any catalog "
                "service (list projects to narrow it)"]
    if not catalog_projects:
        return ["jira.allowed_projects: empty, and no catalog service names a Jira project: every ticket "
                "will be refused"]
    return [f"jira.allowed_projects: empty: tickets may be filed into the catalog's projects "
            f"({', '.join(sorted(set(catalog_projects)))})"]


MAX_DEPTH = 20  # the policy's own shape is 3 deep; anything far deeper is a broken or hostile file


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping: YAML's own rule, which
    PyYAML does not enforce (it keeps the last, so `default_mode: read_only` then
    `default_mode: execute` would quietly serve as execute)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise ConfigError(f"line {line}: duplicate key {key!r} (first given at line {seen[key]}); "
                                  "keep one")
            if isinstance(key, Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _depth(node: yaml.Node) -> int:
    """How deeply the composed document nests, without recursion (a hostile file may nest
    thousands of levels)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        if isinstance(current, yaml.SequenceNode):
            stack.extend((child, level + 1) for child in current.value)
        elif isinstance(current, yaml.MappingNode):
            stack.extend((child, level + 1) for pair in current.value for child in pair)
    return deepest


def parse_policy_yaml(text: str, origin: str) -> Any:
    """The YAML document of a policy file, or a one-line `ConfigError`: not YAML, nested deeper
    than `MAX_DEPTH`, or a key repeated in one mapping."""
    try:
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _depth(node) > MAX_DEPTH:
                raise ConfigError(f"{origin}: nested more than {MAX_DEPTH} levels deep; a policy is a few "
                                  "levels of mappings and lists")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except ConfigError as exc:
        raise ConfigError(str(exc) if str(exc).startswith(origin) else f"{origin}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {' '.join(str(exc).split())}") from None


def parse_policy(raw: Any, origin: str) -> Policy:
    if not isinstance(raw, dict) or "agent_policy" not in raw:
        raise ConfigError(f"{origin}: expected a top-level `agent_policy:` mapping")
    extra = sorted(set(raw) - {"agent_policy"})
    if extra:
        raise ConfigError(f"{origin}: unknown top-level key(s): {', '.join(extra)}")
    body = raw["agent_policy"]
    if body is not None and not isinstance(body, dict):
        raise ConfigError(f"{origin}: agent_policy: expected a mapping, got {type(body).__name__}")
    try:
        return Policy.model_validate(body or {})
    except ValidationError as exc:
        raise ConfigError("\n".join(f"{origin}: {line}" for line in _error_lines(exc))) from exc


def _error_lines(exc: ValidationError) -> list[str]:
    """Every problem as "agent_policy.<key>: <message>", the file's own key path."""
    lines: list[str] = []
    for error in exc.errors():
        where = ".".join(str(part) for part in ("agent_policy", *error["loc"]))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        if error["loc"]:
            lines.append(f"{where}: {message}")
        else:  # cross-field checks: each line already starts with its own key
            lines.extend(f"agent_policy.{line}" for line in message.splitlines())
    return lines


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; any problem is a `ConfigError` naming file and key
    (one line for a file that is not UTF-8, not YAML, nested too deeply or repeats a key)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read policy file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                          "save the policy as UTF-8") from None
    return parse_policy(parse_policy_yaml(text, str(path)), str(path))


def default_policy() -> Policy:
    """The bundled policy (reads allowed, the Jira write behind one approval)."""
    return load_policy(BUNDLED_POLICY)


def read_only_policy() -> Policy:
    return load_policy(READ_ONLY_POLICY)
