"""`doctor` against the sandbox: every read works, every write is refused before it is sent, the
Slack token has the manifest's scopes, and the model answers one tiny request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic_ai import models
from typer.testing import CliRunner

from bot.app.cli import app
from bot.app.doctor import channels_row, run_doctor
from bot.core.config import Settings, SlackSettings
from bot.core.models import ServiceEntry
from bot.core.policy import default_policy
from bot.intake.catalog import Catalog
from connectors import pagerduty
from sandbox.scenario import Scenario
from sandbox.server import Sandbox


@pytest.fixture(autouse=True)
def _allow_sandbox_model_requests() -> Iterator[None]:
    # conftest blocks model requests; the doctor's model check reaches only the sandbox's model.
    with models.override_allow_model_requests(True):
        yield


async def test_doctor_reads_everything_and_no_write_reaches_the_sandbox(checkout: Scenario) -> None:
    with Sandbox(checkout) as sb:
        rows = await run_doctor(sb.settings(), default_policy(), Catalog(checkout.service_entries()),
                                now=checkout.now)
        writes = {system: sb.recorder.writes(system) for system in ("datadog", "github", "confluence",
                                                                    "pagerduty", "jira")}
    by_name = {row.connector: row for row in rows}
    assert set(by_name) == {"datadog", "github", "confluence", "pagerduty", "jira (read)", "jira (writer)",
                            "slack", "model", "channels"}
    assert not [row for row in rows if row.failed]
    assert all(row.write == "refused" for name, row in by_name.items() if name not in {"slack", "model", "channels"})
    assert writes == {system: [] for system in writes}
    assert "every scope of manifest.yaml" in by_name["slack"].read_detail
    model = by_name["model"]
    assert model.read == "ok"
    assert model.read_detail.startswith("openai:gpt-4.1@2025-04-14 answered in ")
    assert "$0.0" in model.read_detail, "the probe's cost is shown"
    assert (by_name["channels"].read, by_name["channels"].read_detail) == (
        "ok", "each of 1 service(s) has a Slack channel")


def _settings(default_channel: str | None) -> Settings:
    return Settings(slack=SlackSettings(default_channel=default_channel))


def test_the_channels_check_fails_naming_every_service_whose_alerts_would_not_be_posted() -> None:
    catalog = Catalog([ServiceEntry(name="checkout-api", slack_channel="C0INCCHK"), ServiceEntry(name="search-api"),
                       ServiceEntry(name="payments")])
    row = channels_row(_settings(None), catalog)
    assert row.failed
    assert row.read_detail == ("no Slack channel for payments, search-api and no IB_SLACK__DEFAULT_CHANNEL: their "
                               "PagerDuty alerts would not be posted (give each a slack_channel in the catalog, or "
                               "set IB_SLACK__DEFAULT_CHANNEL)")
    row = channels_row(_settings("C0DEFAULT"), catalog)
    assert not row.failed
    assert row.read_detail == ("each of 3 service(s) has a Slack channel; payments, search-api use the default "
                               "channel C0DEFAULT")
    assert channels_row(_settings(None), Catalog([])).read == "skipped"


async def test_a_token_without_a_manifest_scope_fails_the_slack_check(checkout: Scenario) -> None:
    with Sandbox(checkout) as sb:
        sb.system("slack").granted_scopes = ["app_mentions:read", "chat:write", "commands", "files:write",
                                             "users:read", "channels:history"]
        rows = await run_doctor(sb.settings(), default_policy(), Catalog(checkout.service_entries()),
                                now=checkout.now)
    slack = next(row for row in rows if row.connector == "slack")
    assert slack.failed
    assert "usergroups:read (usergroups.list, usergroups.users.list)" in slack.read_detail


async def test_a_failing_model_endpoint_fails_the_model_check(checkout: Scenario) -> None:
    with Sandbox(checkout) as sb:
        sb.system("llm").behaviour = "http_500"
        rows = await run_doctor(sb.settings(), default_policy(), Catalog(checkout.service_entries()),
                                now=checkout.now)
    model = next(row for row in rows if row.connector == "model")
    assert model.failed
    assert "openai:gpt-4.1@2025-04-14 (http_error)" in model.read_detail
    assert "briefs would be drafted offline" in model.read_detail


async def test_without_a_model_provider_the_model_check_is_skipped(checkout: Scenario) -> None:
    with Sandbox(checkout) as sb:
        settings = sb.settings()
        offline = settings.model_copy(update={"llm": settings.llm.model_copy(update={"enabled": False})})
        rows = await run_doctor(offline, default_policy(), Catalog(checkout.service_entries()), now=checkout.now)
        calls = sb.recorder.requests("llm")
    model = next(row for row in rows if row.connector == "model")
    assert (model.read, model.failed) == ("skipped", False)
    assert "drafted offline" in model.read_detail
    assert calls == []


async def test_doctor_reports_a_source_that_is_down(checkout: Scenario) -> None:
    systems = ["datadog", "confluence", "jira", "pagerduty", "slack"]  # GitHub is not running
    with Sandbox(checkout, systems=systems) as sb:
        rows = await run_doctor(sb.settings(), default_policy(), Catalog(checkout.service_entries()),
                                now=checkout.now)
    github = next(row for row in rows if row.connector == "github")
    assert github.failed
    assert github.read == "FAILED"
    assert github.write == "refused", "the guard refuses the write even when the host is down"


async def test_a_write_the_allowlist_lets_through_is_reported_and_not_sent(
        checkout: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    # A connector misconfigured to allow creating incidents: the doctor must say so.
    monkeypatch.setattr(pagerduty, "RULES", (*pagerduty.RULES, ("POST", "/incidents")))
    with Sandbox(checkout) as sb:
        rows = await run_doctor(sb.settings(), default_policy(), Catalog(checkout.service_entries()),
                                now=checkout.now)
        writes = sb.recorder.writes("pagerduty")
    by_name = {row.connector: row for row in rows}
    assert by_name["pagerduty"].write == "NOT REFUSED"
    assert by_name["pagerduty"].failed
    assert [row.connector for row in rows if row.failed] == ["pagerduty"]
    assert writes == [], "the probe checks the allowlist before it would send"


async def test_without_a_catalog_reads_that_need_one_are_skipped_not_failed(checkout: Scenario) -> None:
    with Sandbox(checkout) as sb:
        rows = await run_doctor(sb.settings(catalog_file=None, policy_file=None), now=checkout.now)
    by_name = {row.connector: row for row in rows}
    assert {name for name, row in by_name.items() if row.read == "skipped"} == {"github", "pagerduty",
                                                                                 "jira (read)", "channels"}
    assert by_name["datadog"].read == by_name["confluence"].read == by_name["slack"].read == "ok"
    assert not [row for row in rows if row.failed]


def test_cli_prints_the_table_for_a_bundled_scenario_by_name() -> None:
    result = CliRunner().invoke(app, ["doctor", "--sandbox", "checkout-5xx-after-deploy"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("datadog", "github", "confluence", "pagerduty", "jira (read)", "jira (writer)", "slack", "model"):
        assert name in result.output
    assert result.output.count("write refused") == 6
    assert result.output.count("read ok") == 8


def test_cli_exits_non_zero_when_a_read_fails(checkout: Scenario, tmp_path: Path) -> None:
    raw = json.loads(checkout.model_dump_json(by_alias=True, exclude_none=True))
    raw.pop("path", None)
    raw["world"]["faults"] = {"errors": {"datadog": "http_500"}}
    broken = tmp_path / "datadog-down.yaml"
    broken.write_text(json.dumps(raw))  # JSON is YAML
    result = CliRunner().invoke(app, ["doctor", "--sandbox", str(broken)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "problems with datadog" in result.output


def test_cli_exits_non_zero_when_a_service_has_no_channel_to_post_to(checkout: Scenario, tmp_path: Path) -> None:
    raw = json.loads(checkout.model_dump_json(by_alias=True, exclude_none=True))
    raw.pop("path", None)
    raw["catalog"][0].pop("slack_channel")
    unrouted = tmp_path / "no-channel.yaml"
    unrouted.write_text(json.dumps(raw))
    result = CliRunner().invoke(app, ["doctor", "--sandbox", str(unrouted)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "problems with channels" in result.output
    assert "no Slack channel for checkout-api" in result.output
