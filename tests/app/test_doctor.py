"""`doctor` against the sandbox: every read works, every write is refused before it is sent, the
Slack token has the manifest's scopes, and the model answers one tiny request."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import models
from rich.console import Console
from typer.testing import CliRunner

from bot.app import doctor, doctor_catalog
from bot.app.cli import app
from bot.app.doctor import DoctorRow, channels_row, doctor_table, run_doctor, services_row
from bot.core.audit import MemoryAudit
from bot.core.config import Settings, SlackSettings
from bot.core.models import DatadogRef, ServiceEntry
from bot.core.policy import Policy, default_policy, parse_policy
from bot.intake.catalog import Catalog
from connectors import pagerduty
from connectors.pagerduty import PagerDutyService, ServiceListing
from sandbox.core import RecordedRequest
from sandbox.scenario import Scenario, parse_scenario
from sandbox.server import Sandbox
from tests.helpers.scenarios import with_faults


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
    assert set(by_name) == {"datadog", "github", "confluence", "pagerduty", "pagerduty services", "jira (read)",
                            "jira (writer)", "slack", "model", "channels", *CATALOG_ROWS}
    assert not [row for row in rows if row.failed]
    assert all(row.write == "refused" for name, row in by_name.items()
               if name not in {"slack", "model", "channels", "pagerduty services", *CATALOG_ROWS})
    assert writes == {system: [] for system in writes}
    assert "every scope of manifest.yaml" in by_name["slack"].read_detail
    model = by_name["model"]
    assert model.read == "ok"
    assert model.read_detail.startswith("openai:gpt-4.1@2025-04-14 answered in ")
    assert "$0.0" in model.read_detail, "the probe's cost is shown"
    assert (by_name["channels"].read, by_name["channels"].read_detail) == (
        "ok", "each of 1 service(s) has a Slack channel")
    services = by_name["pagerduty services"]
    assert services.read == "ok"
    assert services.read_detail.startswith("pagerduty.list_services: 1 service(s) in ")
    assert services.read_detail.endswith("; each is in the catalog, and PagerDuty has each service the catalog "
                                         "names")
    assert [(by_name[name].read, _untimed(by_name[name].read_detail)) for name in CATALOG_ROWS] == [
        ("ok", "datadog.get_dashboard: 1 dashboard(s) checked; each exists"),
        ("ok", "github.list_deployments: 1 repository(s) checked; the token can list each one's deployments"),
        ("ok", "confluence.search: 1 space(s) checked; a search of each finds pages"),
        ("ok", "jira.search: 1 project(s) checked; each exists"),
    ]


CATALOG_ROWS = ("datadog dashboards", "github repos", "confluence spaces", "jira projects")


def _untimed(detail: str) -> str:
    """A row's detail without its latency (" in 12 ms"), which differs run to run."""
    return re.sub(r" in \d+ ms", "", detail)


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
    assert {name for name, row in by_name.items() if row.read == "skipped"} == {
        "github", "pagerduty", "pagerduty services", "jira (read)", "channels", *CATALOG_ROWS}
    assert by_name["datadog dashboards"].read_detail == "no catalog"
    assert by_name["datadog"].read == by_name["confluence"].read == by_name["slack"].read == "ok"
    assert not [row for row in rows if row.failed]


def test_cli_prints_the_table_for_a_bundled_scenario_by_name() -> None:
    result = CliRunner().invoke(app, ["doctor", "--sandbox", "checkout-5xx-after-deploy"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("datadog", "github", "confluence", "pagerduty", "pagerduty services", "jira (read)",
                 "jira (writer)", "slack", "model", *CATALOG_ROWS):
        assert name in result.output
    assert result.output.count("write refused") == 6
    assert result.output.count("read ok") == 13


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


# --- PagerDuty's services against the catalog ----------------------------------------------

EXTRA = [{"id": "PBILL01", "name": "Billing API"}, {"id": "PSRCH01", "name": "search-api"},
         {"id": "POLD001", "name": "legacy-batch", "status": "disabled"}]
TYPO = ServiceEntry(name="payments", slack_channel="C0PAY", pagerduty_service_id="PPAYM0X")


def with_directory(base: Scenario, services: list[dict[str, str]]) -> Scenario:
    """The same world, with PagerDuty services the scenario's catalog does not name."""
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw.pop("path", None)
    raw["world"]["pagerduty"] = {"services": services}
    return parse_scenario(raw, f"{base.id} with more PagerDuty services")


def with_default_channel(settings: Settings, channel: str | None) -> Settings:
    return settings.model_copy(update={"slack": settings.slack.model_copy(update={"default_channel": channel})})


async def _services_row(sc: Scenario, catalog: Catalog, default_channel: str | None = None,
                        **policy: Any) -> DoctorRow:
    with Sandbox(sc) as sb:
        rows = await run_doctor(with_default_channel(sb.settings(), default_channel),
                                parse_policy(policy, "test") if policy else default_policy(), catalog, now=sc.now)
    return next(row for row in rows if row.connector == "pagerduty services")


async def test_a_catalog_id_pagerduty_does_not_have_fails_and_uncatalogued_services_are_a_warning(
        checkout: Scenario) -> None:
    catalog = Catalog([*checkout.service_entries(), TYPO])
    row = await _services_row(with_directory(checkout, EXTRA), catalog, default_channel="C0DEFAULT")
    assert row.failed
    parts = row.read_detail.split("; ")
    assert parts[0].startswith("pagerduty.list_services: 4 service(s) in ")
    assert parts[1:] == [
        "the catalog names PagerDuty service id(s) PagerDuty does not have: payments (PPAYM0X) (a typo? those "
        "services' alerts would not find their catalog entry)",
        "2 PagerDuty service(s) not in the catalog (no entry has their id), so their alerts go to the default "
        "channel C0DEFAULT: Billing API (PBILL01), search-api (PSRCH01)",
    ], "the disabled service opens no incidents: it is not counted"


async def test_uncatalogued_services_with_a_default_channel_warn_without_failing(checkout: Scenario) -> None:
    row = await _services_row(with_directory(checkout, EXTRA), Catalog(checkout.service_entries()),
                              default_channel="C0DEFAULT")
    assert (row.read, row.failed) == ("warning", False)
    assert "2 PagerDuty service(s) not in the catalog (no entry has their id), so" in row.read_detail


async def test_uncatalogued_services_with_no_default_channel_fail(checkout: Scenario) -> None:
    row = await _services_row(with_directory(checkout, EXTRA), Catalog(checkout.service_entries()))
    assert row.failed
    assert row.read_detail.endswith(
        "2 PagerDuty service(s) not in the catalog (no entry has their id) and no IB_SLACK__DEFAULT_CHANNEL: their "
        "alerts would not be posted: Billing API (PBILL01), search-api (PSRCH01) (add them to the catalog, each with "
        "its pagerduty service_id and a slack_channel, or set IB_SLACK__DEFAULT_CHANNEL)")


async def test_pagerduty_failing_to_list_its_services_fails_the_row_and_nothing_else(checkout: Scenario) -> None:
    broken = with_faults(checkout, errors={"pagerduty.list_services": "http_500"})
    with Sandbox(broken) as sb:
        rows = await run_doctor(sb.settings(), default_policy(), Catalog(checkout.service_entries()),
                                now=checkout.now)
    services = next(row for row in rows if row.connector == "pagerduty services")
    assert (services.read, services.read_detail) == ("FAILED", "pagerduty.list_services: HTTP 500 after 3 attempts")
    assert [row.connector for row in rows if row.failed] == ["pagerduty services"]


@pytest.fixture
def doctor_audits(monkeypatch: pytest.MonkeyPatch) -> list[MemoryAudit]:
    """Every audit sink a doctor run opens, kept for the test to read."""
    audits: list[MemoryAudit] = []

    def audit() -> MemoryAudit:
        audits.append(MemoryAudit())
        return audits[-1]

    monkeypatch.setattr(doctor, "MemoryAudit", audit)
    return audits


async def test_the_services_read_is_audited_through_the_choke_point(
        checkout: Scenario, doctor_audits: list[MemoryAudit]) -> None:
    audits = doctor_audits
    with Sandbox(with_directory(checkout, EXTRA[:1])) as sb:
        await run_doctor(with_default_channel(sb.settings(), "C0DEFAULT"), default_policy(),
                         Catalog(checkout.service_entries()), now=checkout.now)
    [row] = [row for row in audits[0].tool_calls if row.tool == "pagerduty.list_services"]
    assert (row.actor, row.decision, row.outcome, row.detail, row.evidence_count) == (
        "doctor", "allow", "ok", "2 items", 2)


async def test_a_policy_without_the_tool_skips_the_check_and_sends_nothing(checkout: Scenario) -> None:
    reads = ["datadog.query_metrics", "github.list_deployments", "confluence.search", "pagerduty.list_incidents",
             "jira.search"]
    with Sandbox(with_directory(checkout, EXTRA)) as sb:
        rows = await run_doctor(sb.settings(), parse_policy({"agent_policy": {"allowed_tools": reads}}, "test"),
                                Catalog(checkout.service_entries()), now=checkout.now)
        listed = sb.recorder.requests("pagerduty", tool="pagerduty.list_services")
    row = next(row for row in rows if row.connector == "pagerduty services")
    assert (row.read, row.failed, listed) == ("skipped", False, [])
    assert row.read_detail == ("pagerduty.list_services: read tool not listed in allowed_tools; PagerDuty's "
                               "services were not compared with the catalog")


def _listing(count: int, *, cut: bool = False) -> ServiceListing:
    return ServiceListing(services=[PagerDutyService(id=f"PSVC{n:03}", name=f"svc-{n}", status="active")
                                    for n in range(count)], cut=cut)


def test_at_most_five_services_are_named_and_the_rest_counted() -> None:
    row = services_row(_listing(8), Catalog([ServiceEntry(name="svc-0", pagerduty_service_id="PSVC000")]), "C0D")
    assert row.read_detail.endswith(
        "7 PagerDuty service(s) not in the catalog (no entry has their id), so their alerts go to the default "
        "channel C0D: svc-1 (PSVC001), svc-2 (PSVC002), svc-3 (PSVC003), svc-4 (PSVC004), svc-5 (PSVC005) and 2 more")


def test_an_unknown_catalog_id_names_pagerdutys_service_of_the_same_name() -> None:
    catalog = Catalog([ServiceEntry(name="svc-1", pagerduty_service_id="PSVC0O1"),
                       ServiceEntry(name="svc-0", pagerduty_service_id="PSVC000")])
    row = services_row(_listing(2), catalog, "C0D")
    assert row.failed
    assert ("PagerDuty service id(s) PagerDuty does not have: svc-1 (PSVC0O1; PagerDuty's svc-1 is PSVC001) "
            "(a typo?") in row.read_detail


def test_a_catalog_id_past_a_cut_listing_is_not_called_unknown() -> None:
    catalog = Catalog([ServiceEntry(name=f"svc-{n}", pagerduty_service_id=f"PSVC{n:03}") for n in range(2)]
                      + [ServiceEntry(name="far", pagerduty_service_id="PFAR001")])
    row = services_row(_listing(2, cut=True), catalog, None)
    assert (row.read, row.failed) == ("ok", False)
    assert row.read_detail == ("pagerduty.list_services: 2 service(s); not among the services read, so not "
                               "checked: far (PFAR001); PagerDuty has more; only these 2 were compared")


def test_service_names_are_printed_as_text_never_as_markup() -> None:
    hostile = PagerDutyService(id="PHOST01", name="[/bold] [link=https://evil.example]x[/link]", status="active")
    row = services_row(ServiceListing(services=[hostile]), Catalog([ServiceEntry(name="a")]), "C0D")
    console = Console(record=True, width=400)
    console.print(doctor_table([row]))
    assert "[/bold] [link=https://evil.example]x[/link] (PHOST01)" in console.export_text()


def test_cli_exits_non_zero_when_pagerduty_has_a_service_whose_alerts_would_go_nowhere(
        checkout: Scenario, tmp_path: Path) -> None:
    raw = json.loads(with_directory(checkout, EXTRA[:1]).model_dump_json(by_alias=True, exclude_none=True))
    raw.pop("path", None)
    extra = tmp_path / "uncatalogued.yaml"
    extra.write_text(json.dumps(raw))
    result = CliRunner().invoke(app, ["doctor", "--sandbox", str(extra)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "problems with pagerduty services" in result.output
    assert "Billing API (PBILL01)" in result.output


# --- every reference in the catalog resolves ---------------------------------------------------

ROTTEN = ServiceEntry(name="payments", slack_channel="C0PAY",
                      datadog=DatadogRef(service="payments", dashboards=["chk-ovr-001", "pay-gone-404"]),
                      github_repo="acme/payments-renamed", confluence_space="PAYDOCS", jira_project="PAYX")


async def _catalog_rows(sc: Scenario, catalog: Catalog, policy: Policy | None = None
                        ) -> tuple[dict[str, DoctorRow], list[str]]:
    """The catalog rows of a doctor run, and the paths of the reads they made."""
    with Sandbox(sc) as sb:
        rows = await run_doctor(sb.settings(), policy or default_policy(), catalog, now=sc.now)
        reads = [r.path for r in sb.recorder.requests() if _reference_read(r)]
    return {row.connector: row for row in rows if row.connector in CATALOG_ROWS}, reads


def _reference_read(request: RecordedRequest) -> bool:
    """A read of the catalog rows, told from the connector rows' reads of the same tools by its
    query: one item at most, and (Jira) nothing but the project."""
    query = {name: values[0] for name, values in request.query.items()}
    return (request.tool == "datadog.get_dashboard"
            or (request.tool == "github.list_deployments" and query.get("per_page") == "1")
            or (request.tool == "confluence.search" and query.get("limit") == "1")
            or (request.tool == "jira.search" and " AND " not in query.get("jql", "")))


async def test_each_reference_the_sources_lack_is_named_and_fails_the_doctor(checkout: Scenario) -> None:
    rows, _reads = await _catalog_rows(checkout, Catalog([*checkout.service_entries(), ROTTEN]))
    found = {name: (row.read, _untimed(row.read_detail)) for name, row in rows.items()}
    assert found == {
        "datadog dashboards": ("FAILED", "datadog.get_dashboard: 2 dashboard(s) checked; missing or unreadable: "
                                         "pay-gone-404 (payments): HTTP 404: not found"),
        "github repos": ("FAILED", "github.list_deployments: 2 repository(s) checked; missing or unreadable: "
                                   "acme/payments-renamed (payments): HTTP 404: no such repository, or the token "
                                   "cannot see it"),
        # Confluence does not say whether a space that finds nothing exists: a warning, named.
        "confluence spaces": ("warning", "confluence.search: 2 space(s) checked; no pages found in PAYDOCS "
                                         "(payments) (a space that does not exist, that the token cannot see, or "
                                         "that has no pages: runbook searches there find nothing)"),
        "jira projects": ("FAILED", "jira.search: 2 project(s) checked; missing or unreadable: PAYX (payments): "
                                    "HTTP 400: The value 'PAYX' does not exist for the field 'project'."),
    }


async def test_a_reference_several_services_name_is_checked_once(checkout: Scenario) -> None:
    twin = ServiceEntry(name="checkout-web", slack_channel="C0WEB", github_repo="acme/checkout-api",
                        datadog=DatadogRef(service="checkout-web", dashboards=["chk-ovr-001", "chk-ovr-001"]),
                        jira_project="CHK", confluence_space="OPS")
    rows, reads = await _catalog_rows(checkout, Catalog([*checkout.service_entries(), twin]))
    assert [row.read for row in rows.values()] == ["ok"] * 4
    assert sorted(reads) == ["/api/v1/dashboard/chk-ovr-001", "/repos/acme/checkout-api/deployments",
                             "/rest/api/2/search", "/wiki/rest/api/search"]


async def test_a_source_that_does_not_answer_reads_could_not_check_and_is_not_asked_again(
        checkout: Scenario) -> None:
    dashboards = [f"dash-{n:02}" for n in range(10)]
    wide = ServiceEntry(name="checkout-api", slack_channel="C0INCCHK", pagerduty_service_id="PSVCCHK",
                        datadog=DatadogRef(service="checkout-api", dashboards=dashboards))
    rows, reads = await _catalog_rows(with_faults(checkout, errors={"datadog.get_dashboard": "http_500"}),
                                      Catalog([wide]))
    row = rows["datadog dashboards"]
    assert row.failed
    assert "missing" not in row.read_detail, "an outage says nothing of the dashboards"
    assert _untimed(row.read_detail) == (
        "datadog.get_dashboard: 10 dashboard(s) checked; could not check: dash-00 (checkout-api), dash-01 "
        "(checkout-api), dash-02 (checkout-api), dash-03 (checkout-api): HTTP 500 after 3 attempts; 6 more not "
        "tried once datadog had not answered")
    assert len(set(reads)) == doctor_catalog.CONCURRENCY, "only the first few were asked, each with its retries"


async def test_the_reference_checks_are_audited_through_the_choke_point(
        checkout: Scenario, doctor_audits: list[MemoryAudit]) -> None:
    audits = doctor_audits
    with Sandbox(checkout) as sb:
        await run_doctor(sb.settings(), default_policy(), Catalog([*checkout.service_entries(), ROTTEN]),
                         now=checkout.now)
    [run] = audits  # one audit for the whole doctor run, its catalog checks included
    checks = [(row.tool, row.args, row.outcome, row.evidence_count) for row in run.tool_calls
              if row.tool == "datadog.get_dashboard"]
    assert sorted(checks, key=str) == [
        ("datadog.get_dashboard", {"dashboard_id": "chk-ovr-001"}, "ok", 1),
        ("datadog.get_dashboard", {"dashboard_id": "pay-gone-404"}, "ok", 0),
    ]


async def test_a_policy_without_a_reads_tool_skips_its_references(checkout: Scenario) -> None:
    reads = ["datadog.query_metrics", "datadog.get_dashboard", "confluence.search", "pagerduty.list_incidents",
             "jira.search"]
    rows, sent = await _catalog_rows(checkout, Catalog([*checkout.service_entries(), ROTTEN]),
                                     parse_policy({"agent_policy": {"allowed_tools": reads}}, "test"))
    assert (rows["github repos"].read, rows["github repos"].read_detail) == (
        "skipped", "github.list_deployments: read tool not listed in allowed_tools; the catalog's github repos "
                   "were not checked")
    assert not [path for path in sent if path.startswith("/repos/")]


def test_cli_exits_non_zero_when_a_catalog_dashboard_is_gone(checkout: Scenario, tmp_path: Path) -> None:
    raw = json.loads(checkout.model_dump_json(by_alias=True, exclude_none=True))
    raw.pop("path", None)
    raw["catalog"][0]["datadog"]["dashboards"].append("chk-deleted-9")
    rotten = tmp_path / "rotten.yaml"
    rotten.write_text(json.dumps(raw))
    result = CliRunner().invoke(app, ["doctor", "--sandbox", str(rotten)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "problems with datadog dashboards" in result.output
    assert "chk-deleted-9 (checkout-api): HTTP 404: not found" in result.output
