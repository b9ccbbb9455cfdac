"""The CLI contract others rely on: `draft --json/--blocks`, `policy check`, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic_ai import models
from typer.testing import CliRunner

from bot.app.cli import app
from sandbox.scenario import bundled_scenarios_dir

RUNNER = CliRunner()
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
