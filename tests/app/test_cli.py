"""The CLI contract others rely on: `draft --json/--blocks`, `policy check`, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic_ai import models
from typer.testing import CliRunner

from bot.app.cli import app
from sandbox.scenario import bundled_scenarios_dir

RUNNER = CliRunner()
# serve and clock configure the process's logging from their settings: restored after each test.
pytestmark = pytest.mark.usefixtures("restore_logging")
SCENARIOS = bundled_scenarios_dir()


def test_draft_writes_the_documented_json_shape(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = RUNNER.invoke(app, ["draft", "--scenario", str(SCENARIOS / "checkout-5xx-after-deploy.yaml"),
                                 "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == {"brief", "evidence", "gaps"}
    assert data["brief"]["likely_causes"][0]["kind"] == "deploy"
    ids = {item["id"] for item in data["evidence"]}
    for cause in data["brief"]["likely_causes"]:
        assert cause["claim"]["citations"]
        assert set(cause["claim"]["citations"]) <= ids


def test_planted_secrets_never_reach_the_json_or_the_blocks(tmp_path: Path) -> None:
    out, blocks = tmp_path / "out.json", tmp_path / "blocks.json"
    result = RUNNER.invoke(app, ["draft", "--scenario", str(SCENARIOS / "search-latency-injection.yaml"),
                                 "--json", str(out), "--blocks", str(blocks), "--quiet"])
    assert result.exit_code == 0, result.output
    written = out.read_text() + blocks.read_text() + result.output
    for planted in ("jane.doe@example.com", "sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123"):
        assert planted not in written
    brief = json.dumps(json.loads(out.read_text())["brief"])
    assert "v9.9.9" not in brief
    assert "<!channel>" not in blocks.read_text()
    assert [gap["source"] for gap in json.loads(out.read_text())["gaps"]] == ["confluence"]


def test_a_bad_scenario_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nid: x\nsurprise: true\n")
    result = RUNNER.invoke(app, ["draft", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output


def test_policy_check_prints_each_tool_and_refuses_a_bad_file(tmp_path: Path) -> None:
    good = RUNNER.invoke(app, ["policy", "check", "config/policy.yaml"])
    assert good.exit_code == 0
    assert "jira.create_issue" in good.output
    assert "needs_approval" in good.output
    bad = tmp_path / "policy.yaml"
    bad.write_text("agent_policy:\n  default_mode: yolo\n")
    refused = RUNNER.invoke(app, ["policy", "check", str(bad)])
    assert refused.exit_code == 2
    assert "agent_policy.default_mode" in refused.output


def test_draft_with_the_model_records_model_prompt_tokens_and_cost_and_shows_the_audit(tmp_path: Path) -> None:
    out = tmp_path / "llm.json"
    with models.override_allow_model_requests(True):  # the sandbox's model endpoint, not a provider
        result = RUNNER.invoke(app, ["draft", "--scenario", str(SCENARIOS / "checkout-5xx-after-deploy.yaml"),
                                     "--drafter", "llm", "--json", str(out), "--audit"])
    assert result.exit_code == 0, result.output
    draft = json.loads(out.read_text())["brief"]["draft"]
    assert draft["drafter"] == "llm"
    assert "@" in draft["model"]
    assert draft["prompt_version"].startswith("brief@")
    assert draft["input_tokens"] > 0
    assert draft["cost_usd"] > 0
    assert "Audit · model calls" in result.output
    assert "Audit · tool calls" in result.output


# ---------------------------------------------------------------------------------------------
# Settings, config, policy check, spend: what an operator types on day one
# ---------------------------------------------------------------------------------------------
NO_ENV_FILE = ["--env-file", "/nonexistent/.env"]


def test_wrong_settings_stop_serve_with_one_line_each_and_exit_2() -> None:
    env = {"IB_DATABASE_URL": "mysql://db/x", "IB_PAGERDUTY__WEBHOOK_SECRETS": "whsec", "IB_SLACK__TOKEN": "x"}
    result = RUNNER.invoke(app, [*NO_ENV_FILE, "serve"], env=env)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert [line.split(":", 2)[1].split()[0] for line in lines] == [
        "IB_PAGERDUTY__WEBHOOK_SECRETS", "IB_SLACK__TOKEN"], "each problem is one line naming the setting"
    assert "Traceback" not in result.output
    bad_url = RUNNER.invoke(app, [*NO_ENV_FILE, "clock"], env={"IB_DATABASE_URL": "mysql://db/x"})
    assert bad_url.exit_code == 2
    assert bad_url.output.count("\n") == 1
    assert bad_url.output.startswith("error: IB_DATABASE_URL: not a database URL this bot can use")


def test_an_unreachable_database_is_one_line_too(tmp_path: Path) -> None:
    env = {"IB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/ib", "IB_SLACK__BOT_TOKEN": "xoxb-1",
           "IB_SLACK__SIGNING_SECRET": "s", "IB_LOG_LEVEL": "ERROR"}
    result = RUNNER.invoke(app, [*NO_ENV_FILE, "serve", "--port", "0"], env=env)
    assert result.exit_code == 2
    assert result.output.strip().endswith("Connect call failed ('127.0.0.1', 1)")
    assert "error: IB_DATABASE_URL: cannot open postgresql+asyncpg://nobody@127.0.0.1:1/ib" in result.output


def test_config_shows_settings_masked_and_what_each_feature_lacks(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("IB_SLACK__BOT_TOKEN=xoxb-1234567890-abcdefgh\nIB_SLACK__SIGNING_SECRET=0123456789abcdef\n"
                        "IB_DATABASE_URL=postgresql://ib:hunter22@db/ib\n")
    result = RUNNER.invoke(app, ["--env-file", str(env_file), "config"],
                           env={"IB_LLM__OPENAI__API_KEY": "sk-proj-abcdefghijklmnop", "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for secret in ("xoxb-1234567890-abcdefgh", "0123456789abcdef", "hunter22", "sk-proj-abcdefghijklmnop"):
        assert secret not in out
    assert "set (…efgh)" in out
    assert str(env_file) in out, "where each setting came from"
    assert "environment" in out
    assert "ready      Slack" in out
    assert "IB_PAGERDUTY__WEBHOOK_SECRETS: /webhooks/pagerduty refuses every delivery (503)" in out
    assert "IB_GITHUB__TOKEN: not set; every brief shows GitHub (deploys) as a source gap" in out
    assert "ready      Model: briefs are drafted by openai:gpt-4.1@2025-04-14" in out
    assert "IB_LLM__ANTHROPIC__API_KEY: fallback anthropic:claude-haiku-4-5@20251001 has no provider" in out


def test_config_says_when_briefs_are_drafted_offline() -> None:
    result = RUNNER.invoke(app, [*NO_ENV_FILE, "config"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "briefs are drafted offline: no model provider is configured (set IB_LLM__OPENAI__API_KEY" in result.output
    assert "SQLite serves one host" in result.output


def test_config_writes_the_reference_and_the_env_example() -> None:
    from bot.core.settings_env import env_example, reference_markdown

    assert RUNNER.invoke(app, ["config", "--reference"]).output == reference_markdown()
    assert RUNNER.invoke(app, ["config", "--env-example"]).output == env_example()


def test_policy_check_accepts_the_seed_policy_and_warns() -> None:
    result = RUNNER.invoke(app, ["policy", "check", "config/policy.seed.yaml", "--catalog",
                                 "config/catalog.example.yaml"])
    assert result.exit_code == 0, result.output
    assert "jira.create_issue          needs_approval  write tool: needs one approver" in result.output
    assert "jira.allowed_projects: [] (the catalog's projects: ['CHK'])" in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 4
    assert "warning: approvers: none listed: any full member of the Slack workspace" in result.output


def test_sandbox_trigger_without_a_running_sandbox_says_what_to_run(tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["sandbox", "trigger", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "incident-brief sandbox up" in result.output
