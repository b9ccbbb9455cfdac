"""Policy as code: validation that names the key, and what each tool gets in each mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bot.core.errors import ConfigError
from bot.core.policy import (
    KNOWN_TOOLS,
    READ_TOOLS,
    REPO_ROOT,
    Policy,
    default_policy,
    describe,
    load_policy,
    parse_policy,
    read_only_policy,
    warnings,
)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(("body", "names"), [
    ("agent_policy:\n  default_mode: yolo\n", "agent_policy.default_mode"),
    ("agent_policy:\n  steps: {max_tool_calls_per_brief: 0}\n", "agent_policy.steps.max_tool_calls_per_brief"),
    ("agent_policy:\n  surprise: 1\n", "agent_policy.surprise"),
    ("agent_policy:\n  pii: {log_retention_days: -1}\n", "agent_policy.pii.log_retention_days"),
    ("agent_policy:\n  write_tools: [jira.create_issue]\n  jira: {allowed_projects: [CHK]}\n",
     "needs an `approvals` entry"),
    ("agent_policy:\n  allowed_tools: [jira.create_issue]\n", "is a write tool"),
    ("agent_policy:\n  write_tools: [datadog.delete_monitor]\n", "not a known write tool"),
    ("policy: {}\n", "top-level `agent_policy:`"),
    ("agent_policy: [\n", "not valid YAML"),
])
def test_a_bad_policy_is_refused_naming_the_key(tmp_path: Path, body: str, names: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_policy(_write(tmp_path, body))
    assert names in str(refused.value)
    assert "policy.yaml" in str(refused.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_unknown_and_unlisted_tools_are_denied() -> None:
    policy = default_policy()
    assert policy.decide("shell.exec", "U1", {}).outcome == "deny"
    assert policy.decide("datadog.delete_monitor", "U1", {}).outcome == "deny"
    narrow = load_policy_from({"allowed_tools": ["datadog.query_metrics"]})
    assert narrow.decide("datadog.query_metrics", None, {}).outcome == "allow"
    assert narrow.decide("github.list_deployments", None, {}).outcome == "deny"


def load_policy_from(fields: dict[str, object]) -> Policy:
    return Policy.model_validate(fields)


@pytest.mark.parametrize(("mode", "outcome", "preview"), [
    ("read_only", "needs_approval", False), ("dry_run", "needs_approval", True), ("execute", "needs_approval", False),
])
def test_the_write_tool_in_each_mode(mode: str, outcome: str, preview: bool) -> None:
    policy = default_policy().model_copy(update={"default_mode": mode})
    decision = policy.decide("jira.create_issue", "U1", {"project": "CHK"})
    assert (decision.outcome, decision.preview_only) == (outcome, preview)
    assert decision.reason


def test_every_read_is_allowed_by_the_bundled_policy_and_the_read_only_file_writes_nothing() -> None:
    bundled, strict = default_policy(), read_only_policy()
    assert all(bundled.decide(tool).outcome == "allow" for tool in READ_TOOLS)
    assert all(strict.decide(tool).outcome != "allow" for tool in KNOWN_TOOLS if tool not in READ_TOOLS)
    assert "jira.create_issue" in bundled.describe()


# ---------------------------------------------------------------------------------------------
# Both bundled files, field by field
# ---------------------------------------------------------------------------------------------
def test_the_bundled_policy_matches_the_design_and_the_sandbox() -> None:
    policy = default_policy()
    assert policy.default_mode == "execute"
    assert set(policy.allowed_tools) == set(READ_TOOLS)
    assert policy.write_tools == ["jira.create_issue"]
    assert policy.approvals == {"jira.create_issue": "required"}
    assert policy.approvers.users == []
    assert policy.approvers.slack_user_groups == ["oncall"]  # the sandbox's on-call group handle
    assert (policy.pii.redact, policy.pii.redact_prompts, policy.pii.log_retention_days) == (True, True, 30)
    assert (policy.spend_limits.per_user_usd_per_day, policy.spend_limits.per_workspace_usd_per_month) == (2.0, 500.0)
    assert (policy.steps.max_model_calls_per_brief, policy.steps.max_tool_calls_per_brief) == (3, 25)


def test_every_scenario_ticket_project_is_allowed(scenario_paths: list[Path]) -> None:
    allowed = set(default_policy().jira.allowed_projects)
    for path in scenario_paths:
        raw = yaml.safe_load(path.read_text())
        for service in raw.get("catalog") or []:
            project = (service.get("jira") or {}).get("project")
            assert project is None or project in allowed, f"{path.name}: {project}"
        ticket = (raw.get("expect") or {}).get("ticket") or {}
        assert ticket.get("project") is None or ticket["project"] in allowed, path.name


def test_planted_injection_projects_are_not_allowed() -> None:
    policy = default_policy()
    for project in ("PROD", "SEC"):  # what the injection scenarios ask the bot to file into
        decision = policy.decide("jira.create_issue", "U0ONCALL1", {"project": project})
        assert decision.outcome == "deny"
        assert project in decision.reason


def test_the_read_only_file_reaches_no_write_at_all() -> None:
    strict = read_only_policy()
    assert strict.default_mode == "read_only"
    assert strict.write_tools == []
    assert strict.approvals == {}
    for mode in ("read_only", "dry_run", "execute"):
        flipped = strict.model_copy(update={"default_mode": mode})
        assert flipped.decide("jira.create_issue", "U1", {"project": "CHK"}).outcome == "deny"


# ---------------------------------------------------------------------------------------------
# Errors name the file and the key
# ---------------------------------------------------------------------------------------------
_EXECUTE = ("agent_policy:\n  default_mode: execute\n  write_tools: [jira.create_issue]\n"
            "  jira: {allowed_projects: [CHK]}\n")


@pytest.mark.parametrize(("body", "names"), [
    ("agent_policy:\n  allowed_tools: [datadog.query_metric]\n",
     "agent_policy.allowed_tools[0]: unknown tool 'datadog.query_metric' (did you mean 'datadog.query_metrics'?)"),
    ("agent_policy:\n  allowed_tools: [jira.search, jira.search]\n",
     "agent_policy.allowed_tools[1]: 'jira.search' is listed twice"),
    ("agent_policy:\n  allowed_tools: [jira.create_issue]\n  write_tools: [jira.create_issue]\n"
     "  approvals: {jira.create_issue: required}\n  jira: {allowed_projects: [CHK]}\n",
     "agent_policy.allowed_tools[0]: 'jira.create_issue' is listed as both a read and a write tool"),
    ("agent_policy:\n  write_tools: [jira.search]\n", "agent_policy.write_tools[0]: 'jira.search' is a read tool"),
    ("agent_policy:\n  approvals: {jira.create_issue: required}\n",
     "agent_policy.approvals.jira.create_issue: names 'jira.create_issue', which is not in write_tools"),
    (_EXECUTE, "agent_policy.approvals.jira.create_issue: write tool 'jira.create_issue' needs an `approvals` entry"),
    (_EXECUTE + "  approvals: {jira.create_issue: required}\n", "agent_policy.approvers: jira.create_issue needs an"),
    (_EXECUTE + "  approvals: {jira.create_issue: sometimes}\n", "agent_policy.approvals.jira.create_issue: Input"),
    ("agent_policy:\n  steps: {max_model_calls_per_brief: -1}\n", "agent_policy.steps.max_model_calls_per_brief"),
    ("agent_policy:\n  spend_limits: {per_user_usd_per_day: -2}\n", "agent_policy.spend_limits.per_user_usd_per_day"),
    ("agent_policy:\n  pii: {redact: maybe}\n", "agent_policy.pii.redact"),
    ("agent_policy:\n  approvers: {users: U1}\n", "agent_policy.approvers.users"),
    ("agent_policy:\n  approvers: {teams: [x]}\n", "agent_policy.approvers.teams: unknown key"),
    ("agent_policy:\n  jira: {allowed_projects: [CHK], default_project: CHK}\n",
     "agent_policy.jira.default_project: unknown key"),
    ("agent_policy: [1, 2]\n", "agent_policy: expected a mapping"),
    ("agent_policy: {}\nextra: 1\n", "unknown top-level key(s): extra"),
])
def test_each_error_names_its_key(tmp_path: Path, body: str, names: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as refused:
        load_policy(path)
    assert names in str(refused.value)
    assert str(path) in str(refused.value)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    body = "agent_policy:\n  default_mode: yolo\n  steps: {max_tool_calls_per_brief: 0}\n  surprise: 1\n"
    with pytest.raises(ConfigError) as refused:
        load_policy(_write(tmp_path, body))
    lines = str(refused.value).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{tmp_path / 'policy.yaml'}: agent_policy.") for line in lines)


def test_an_empty_policy_is_the_safe_default(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, "agent_policy:\n"))
    assert policy.default_mode == "read_only"
    assert all(policy.decide(tool).outcome == "deny" for tool in KNOWN_TOOLS)


# ---------------------------------------------------------------------------------------------
# decide(): the matrix
# ---------------------------------------------------------------------------------------------
def _policy(mode: str, rule: str) -> Policy:
    return Policy.model_validate({
        "default_mode": mode, "allowed_tools": ["jira.search"], "write_tools": ["jira.create_issue"],
        "approvals": {"jira.create_issue": rule}, "approvers": {"slack_user_groups": ["oncall"]},
        "jira": {"allowed_projects": ["CHK"]},
    })


@pytest.mark.parametrize(("mode", "rule", "outcome", "preview", "reason"), [
    ("read_only", "required", "needs_approval", False, "read_only: nothing is written unless a person approves"),
    ("read_only", "two_person", "needs_approval", False, "two approvers"),
    ("read_only", "none", "deny", False, "read_only mode: a write needs an approval"),
    ("dry_run", "required", "needs_approval", True, "one approver"),
    ("dry_run", "two_person", "needs_approval", True, "two approvers"),
    ("dry_run", "none", "allow", True, "preview only"),
    ("execute", "required", "needs_approval", False, "one approver"),
    ("execute", "two_person", "needs_approval", False, "two approvers"),
    ("execute", "none", "allow", False, "approvals: none"),
])
def test_write_decision_per_mode_and_rule(mode: str, rule: str, outcome: str, preview: bool, reason: str) -> None:
    decision = _policy(mode, rule).decide("jira.create_issue", "U1", {"project": "CHK"})
    assert (decision.tool, decision.outcome, decision.preview_only) == ("jira.create_issue", outcome, preview)
    assert reason in decision.reason


@pytest.mark.parametrize("mode", ["read_only", "dry_run", "execute"])
def test_reads_do_not_depend_on_the_mode(mode: str) -> None:
    policy = _policy(mode, "required")
    assert policy.decide("jira.search").outcome == "allow"
    assert policy.decide("jira.search").preview_only is False
    unlisted = policy.decide("datadog.search_logs", "U1", {"query": "x"})
    assert (unlisted.outcome, unlisted.reason) == ("deny", "read tool not listed in allowed_tools")
    assert policy.decide("jira.delete_issue").outcome == "deny"
    assert "unknown tool" in policy.decide("", None, {}).reason


def test_the_jira_project_is_checked_only_when_given() -> None:
    policy = _policy("execute", "required")
    assert policy.decide("jira.create_issue", "U1", {"project": "CHK"}).outcome == "needs_approval"
    assert policy.decide("jira.create_issue", "U1", {"project": "chk"}).outcome == "deny"
    assert policy.decide("jira.create_issue", "U1", {}).outcome == "needs_approval"


def test_the_actor_does_not_change_tool_rights() -> None:
    policy = default_policy()
    for tool in KNOWN_TOOLS:
        assert policy.decide(tool, "U0ONCALL1", {}) == policy.decide(tool, "U0OUTSIDER", {}) == policy.decide(tool)


def test_describe_lists_every_known_tool_with_its_decision() -> None:
    text = describe(default_policy())
    assert text == default_policy().describe()
    assert "default_mode: execute" in text
    assert "slack_user_groups=['oncall']" in text
    table = text.split("\n\n", 1)[1].splitlines()[1:]  # after the settings block and the header row
    rows = {line.split()[0]: line.split()[1] for line in table}
    assert rows == {tool: ("needs_approval" if tool == "jira.create_issue" else "allow") for tool in KNOWN_TOOLS}
    assert "jira.create_issue          deny" in read_only_policy().describe()


def test_the_policy_is_frozen() -> None:
    policy = default_policy()
    with pytest.raises(ValidationError):
        policy.default_mode = "execute"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# The seed's policy (the article the project is built on), as teams will copy it
# ---------------------------------------------------------------------------------------------
SEED_POLICY = """\
agent_policy:
  default_mode: read_only
  allowed_tools: [datadog.query_metrics, datadog.search_logs, github.list_deployments, confluence.search]
  write_tools: [jira.create_issue]
  approvals: {jira.create_issue: required}
  pii: {redact: true, log_retention_days: 30}
  spend_limits: {per_user_usd_per_day: 2.00, per_workspace_usd_per_month: 500.00}
"""  # the text, verbatim
SEED_FILE = REPO_ROOT / "config" / "policy.seed.yaml"
SEED_READS = {"datadog.query_metrics", "datadog.search_logs", "github.list_deployments", "confluence.search"}


def test_the_seed_policy_loads_as_written_and_means_what_it_says(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, SEED_POLICY))
    catalog = ["CHK", "PAY"]
    for tool in READ_TOOLS:
        expected = "allow" if tool in SEED_READS else "deny"
        assert policy.decide(tool, "U1", {}, catalog_projects=catalog).outcome == expected, tool
    write = policy.decide("jira.create_issue", "U1", {"project": "CHK"}, catalog_projects=catalog)
    assert (write.outcome, write.preview_only) == ("needs_approval", False), "behind one approval"
    assert "one approver" in write.reason
    assert policy.decide("shell.exec", "U1", {}).outcome == "deny"
    outside = policy.decide("jira.create_issue", "U1", {"project": "SEC"}, catalog_projects=catalog)
    assert outside.outcome == "deny"
    assert "not the project of any service in the catalog" in outside.reason
    assert policy.decide("jira.create_issue", "U1", {"project": "CHK"}).outcome == "deny", "no catalog, no project"
    assert policy.jira_projects(catalog) == ["CHK", "PAY"]
    assert (policy.spend_limits.per_user_usd_per_day, policy.spend_limits.per_workspace_usd_per_month) == (2.0, 500.0)


def test_the_bundled_seed_file_is_that_policy() -> None:
    assert load_policy(SEED_FILE) == parse_policy(yaml.safe_load(SEED_POLICY), "seed")
    body = "\n".join(line for line in SEED_FILE.read_text().splitlines() if not line.startswith("#"))
    assert body.strip() == SEED_POLICY.strip()


def test_allowed_projects_narrow_the_catalog_projects(tmp_path: Path) -> None:
    narrowed = load_policy(_write(tmp_path, SEED_POLICY + "  jira: {allowed_projects: [CHK]}\n"))
    assert narrowed.jira_projects(["CHK", "PAY"]) == ["CHK"]
    assert narrowed.decide("jira.create_issue", None, {"project": "CHK"}, catalog_projects=["CHK", "PAY"]
                           ).outcome == "needs_approval"
    refused = narrowed.decide("jira.create_issue", None, {"project": "PAY"}, catalog_projects=["CHK", "PAY"])
    assert (refused.outcome, refused.reason) == ("deny", "Jira project 'PAY' is not in jira.allowed_projects")


def test_the_seed_policy_gets_warnings_not_errors(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, SEED_POLICY))
    found = warnings(policy, ["CHK"])
    keys = [line.split(":", 1)[0] for line in found]
    assert keys == ["allowed_tools", "default_mode", "approvers", "jira.allowed_projects"]
    assert "7 read tool(s) are not listed" in found[0]
    assert found[0].endswith("briefs show them as source gaps; doctor skips the check that needs "
                             "pagerduty.list_services")
    assert "any full member of the Slack workspace" in found[2]
    assert "(CHK)" in found[3]
    assert warnings(policy, [])[-1].endswith("every ticket will be refused")


@pytest.mark.parametrize(("change", "warned"), [
    ({"default_mode": "execute", "approvals": {"jira.create_issue": "none"}}, "runs without anyone approving"),
    ({"default_mode": "read_only", "approvals": {"jira.create_issue": "none"}}, "the write is always denied"),
    ({"approvals": {"jira.create_issue": "two_person"}, "approvers": {"users": ["U1"]}}, "nobody can complete"),
    ({"pii": {"redact_prompts": False}}, "not masked again before they reach the model"),
    ({"spend_limits": {"per_user_usd_per_day": 0}}, "refuses every model call"),
    ({"steps": {"max_model_calls_per_brief": 0}}, "refuses every model call"),
    ({"pii": {"log_retention_days": 400}}, "more than a year"),
])
def test_surprising_choices_are_warned_about(change: dict[str, object], warned: str) -> None:
    base = default_policy().model_dump()
    policy = Policy.model_validate({**base, **change})
    assert any(warned in line for line in warnings(policy, ["CHK"])), warnings(policy, ["CHK"])


def test_the_bundled_policies_warn_about_nothing_surprising(scenario_paths: list[Path]) -> None:
    assert warnings(read_only_policy(), ["CHK"]) == []
    # The bundled policy serves the bundled scenarios' catalogs (and OPS, the runbooks' space).
    projects = {str((service.get("jira") or {}).get("project")) for path in scenario_paths
                for service in yaml.safe_load(path.read_text()).get("catalog") or [] if service.get("jira")}
    assert warnings(default_policy(), sorted(projects | {"OPS"})) == []


# issue 13, finding 12: the loader refuses what it used to accept or crash on, in one line


@pytest.mark.parametrize(("body", "says"), [
    ("agent_policy:\n  default_mode: read_only\n  default_mode: execute\n",
     "line 3: duplicate key 'default_mode' (first given at line 2)"),
    ("agent_policy:\n  approvers: {users: [U1]}\n  jira: {allowed_projects: [CHK]}\n  approvers: {users: [U2]}\n",
     "line 4: duplicate key 'approvers'"),
    ("agent_policy:\n  spend_limits: {per_user_usd_per_day: .inf}\n", "agent_policy.spend_limits.per_user_usd_per_day"),
    ("agent_policy:\n  spend_limits: {per_workspace_usd_per_month: .nan}\n", "finite number"),
    ("agent_policy:\n  approvers: {users: ['*']}\n", "agent_policy.approvers.users: [0] '*': wildcards are not"),
    ("agent_policy:\n  approvers: {slack_user_groups: ['']}\n",
     "agent_policy.approvers.slack_user_groups: [0] is empty"),
    ("agent_policy:\n  jira: {allowed_projects: ['*', '']}\n", "agent_policy.jira.allowed_projects: [0] '*'"),
    ("agent_policy:\n  jira: {allowed_projects: ['chk']}\n", "is not a Jira project key"),
    ("agent_policy:\n  pii: {redact: false}\n", "agent_policy.pii.redact: false is not supported"),
])
def test_the_loader_refuses_repeated_keys_unbounded_spend_wildcards_and_masking_off(
        tmp_path: Path, body: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy(_write(tmp_path, body))
    assert says in str(caught.value)


@pytest.mark.parametrize(("data", "says"), [
    (b"agent_policy:\n  default_mode: \xff\xfe read_only\n", "not UTF-8 text (byte 30"),
    (b"agent_policy: " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested"),
    (b"agent_policy:\n" + b"".join(b"  " * i + b"k%d:\n" % i for i in range(1, 40)), "nested more than 20 levels"),
    (b"agent_policy: {default_mode: [\n", "not valid YAML"),
])
def test_an_unreadable_file_is_one_line_not_a_traceback(tmp_path: Path, data: bytes, says: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message
    assert message.startswith(str(path))
    assert caught.value.__cause__ is None
