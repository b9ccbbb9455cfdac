"""Policy as code: validation that names the key, and what each tool gets in each mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.policy import KNOWN_TOOLS, READ_TOOLS, Policy, default_policy, load_policy, read_only_policy


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
    ("agent_policy:\n  write_tools: [jira.create_issue]\n  approvals: {jira.create_issue: required}\n",
     "allowed_projects is empty"),
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
    ("read_only", "deny", False), ("dry_run", "needs_approval", True), ("execute", "needs_approval", False),
])
def test_the_write_tool_in_each_mode(mode: str, outcome: str, preview: bool) -> None:
    policy = default_policy().model_copy(update={"default_mode": mode})
    decision = policy.decide("jira.create_issue", "U1", {"project": "CHK"})
    assert (decision.outcome, decision.preview_only) == (outcome, preview)
    assert decision.reason


def test_every_read_is_allowed_by_the_bundled_policy_and_nothing_writes_in_read_only() -> None:
    bundled, strict = default_policy(), read_only_policy()
    assert all(bundled.decide(tool).outcome == "allow" for tool in READ_TOOLS)
    assert all(strict.decide(tool).outcome != "allow" for tool in KNOWN_TOOLS if tool not in READ_TOOLS)
    assert "jira.create_issue" in bundled.describe()
