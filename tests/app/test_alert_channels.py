"""Alerts with nowhere to post: a PagerDuty service with no Slack channel in the catalog and no
default channel. Start-up says so (as `doctor` does, `test_doctor`), and an alert that comes
anyway is an error naming the service and the fix, a counter and an audit row the report and
the digest show: never only a log line nobody reads."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app.reports import report_lines
from bot.app.serve import log_gaps
from bot.core.audit import ALERT_NOT_POSTED
from bot.intake.signing import sign_pagerduty
from bot.store.reports import Reports
from bot.telemetry.metrics import registry
from sandbox.pagerduty import build_webhook
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from sandbox.standalone import catalog_yaml
from tests.helpers.inprocess import InProcessBot


def _without_channel(scenario: Scenario) -> Scenario:
    return scenario.model_copy(update={"catalog": [e.model_copy(update={"slack_channel": None})
                                                   for e in scenario.catalog]})


def _not_posted() -> float:
    return registry.get_sample_value("incident_brief_alerts_not_posted_total", {"reason": "no_channel"}) or 0.0


@pytest.fixture
def bot(checkout: Scenario, tmp_path: Path) -> Iterator[InProcessBot]:
    running = InProcessBot(_without_channel(checkout), tmp_path / "channels.db")
    try:
        yield running
    finally:
        running.close()


def test_serve_warns_at_start_up_about_services_without_a_channel(
        checkout: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(catalog_yaml(_without_channel(checkout)))
    with Sandbox(checkout, systems=[]) as sb:
        settings = sb.settings(catalog_file=catalog)
    with caplog.at_level(logging.WARNING, logger="incident_brief.serve"):
        log_gaps(settings)
    [warning] = [r.getMessage() for r in caplog.records if "no Slack channel" in r.getMessage()]
    assert "no Slack channel for checkout-api and no IB_SLACK__DEFAULT_CHANNEL" in warning
    assert "give each a slack_channel in the catalog, or set IB_SLACK__DEFAULT_CHANNEL" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="incident_brief.serve"):
        log_gaps(settings.model_copy(update={"slack": settings.slack.model_copy(
            update={"default_channel": "C0DEFAULT"})}))
    assert not [r for r in caplog.records if "no Slack channel" in r.getMessage()], "the default channel serves"


@pytest.mark.parametrize("catalogued", [True, False], ids=["in the catalog", "not in the catalog"])
def test_an_alert_with_no_channel_is_recorded_counted_and_logged_as_an_error(
        bot: InProcessBot, checkout: Scenario, caplog: pytest.LogCaptureFixture, catalogued: bool) -> None:
    body, headers = build_webhook(checkout)
    if not catalogued:  # a PagerDuty service the catalog does not know: no channel either
        doc = json.loads(body)
        doc["event"]["data"]["service"].update(id="PUNKNOWN", summary="search-api")
        body = json.dumps(doc).encode()
        secret = bot.rt.settings.pagerduty.webhook_secrets[0].get_secret_value()
        headers = {**headers, "X-PagerDuty-Signature": sign_pagerduty(secret, body)}
    service = "checkout-api" if catalogued else "search-api"
    before = _not_posted()
    with caplog.at_level(logging.ERROR, logger="incident_brief.web"):
        assert bot.request("POST", "/webhooks/pagerduty", body=body, headers=headers).status_code == 202
        bot.settle()

    assert bot.sb.recorder.requests("slack", path_prefix="/api/chat.postMessage") == []
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"PagerDuty incident Q1CHK5XX was not posted: its service {service}" in error
    assert f"to fix: give {service} a slack_channel in the catalog, or set IB_SLACK__DEFAULT_CHANNEL" in error
    assert _not_posted() == before + 1
    [row] = bot.call(bot.rt.store.list_control_events())
    assert (row.kind, row.subject, row.actor) == (ALERT_NOT_POSTED, service, "pagerduty-webhook")
    assert row.data["incident_id"] == "Q1CHK5XX"
    assert row.data["reason"] == "no_channel"
    now = bot.rt.store.clock()
    report = bot.call(Reports(bot.rt.store.sessions).trust_report(since=now - timedelta(days=1),
                                                                    until=now + timedelta(minutes=1)))
    assert report.alerts_not_posted == {service: 1}
    assert ("alerts not posted", f"1 (no Slack channel: {service} 1; see `incident-brief doctor`)") in \
        report_lines(report), "the report and the daily digest show it"
