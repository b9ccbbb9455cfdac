"""`audit`, `spend` and `report` over the store, on SQLite and PostgreSQL: the queries
(`bot.store.reports`) against a small hand-built history whose every number is known, and
the commands themselves (`incident-brief audit|spend|report`) on the same database."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from bot.app.cli import app
from bot.core.audit import BriefCheckRecord, ModelCallRecord, ToolCallRecord
from bot.core.models import CauseKind, Confidence, DraftInfo
from bot.store.approvals import Approvals
from bot.store.audit import StoreAudit
from bot.store.repo import Store
from bot.store.reports import Reports, percentile
from tests.helpers.briefs import good_brief, result
from tests.helpers.db import T0, Clock

SINCE, UNTIL = T0 - timedelta(days=7), T0 + timedelta(hours=1)


def _tool(key: str, tool: str, outcome: str, at_offset_s: int = 0) -> ToolCallRecord:
    return ToolCallRecord(brief_key=key, tool=tool, actor=None, decision="allow", decision_reason="listed",
                          outcome=outcome, detail="", latency_ms=120.0, at=T0 + timedelta(seconds=at_offset_s))


def _model(key: str, outcome: str, cost: float) -> ModelCallRecord:
    return ModelCallRecord(brief_key=key, actor=None, task="brief", model="openai:gpt-4.1@2025-04-14",
                           prompt_version="brief@abc", input_tokens=1000, output_tokens=200, cost_usd=cost,
                           latency_ms=900.0, cache_hit=outcome == "cache_hit", outcome=outcome, at=T0)


async def _history(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    """Two incidents in the window (A: a model brief, refreshed by a person, its ticket rejected;
    B: an offline fallback, voted down, its ticket edited and filed) and one before it (C)."""
    store, approvals = Store(sessions, clock=clock), Approvals(sessions, clock=clock)
    audit = StoreAudit(store)
    clock.now = T0 - timedelta(days=10)
    await store.claim_incident(key="pd:C", service="ledger", title="old", channel="C1")
    await store.save_brief("pd:C", result(), trigger="pagerduty", latency_ms=99_000.0)
    clock.now = T0
    for key in ("pd:A", "pd:B"):
        await store.claim_incident(key=key, service="checkout-api", title="5xx", channel="C1")
    llm = DraftInfo(drafter="llm", model="openai:gpt-4.1@2025-04-14", cost_usd=0.03)
    await store.save_brief("pd:A", result(good_brief(draft=llm)), trigger="pagerduty", latency_ms=1200.0)
    await store.save_brief("pd:A", result(good_brief(draft=llm)), trigger="refresh", requested_by="U1",
                           latency_ms=800.0)
    await store.note_human_refresh("pd:A")
    config_first = good_brief(draft=DraftInfo(drafter="offline", model="openai:gpt-4.1@2025-04-14",
                                              fallback_reason="every model in the chain failed: x (http_error)"))
    config_first = config_first.model_copy(update={"likely_causes": [
        config_first.likely_causes[1].model_copy(update={"kind": CauseKind.CONFIG, "confidence": Confidence.LOW})]})
    await store.save_brief("pd:B", result(config_first), trigger="pagerduty", latency_ms=3000.0)
    await store.save_feedback(incident_key="pd:B", version=1, user="U2", vote="down", reason="wrong cause")
    await store.save_feedback(incident_key="pd:A", version=2, user="U3", vote="up")
    for record in (_tool("pd:A", "datadog.get_monitor", "ok"), _tool("pd:A", "datadog.query_metrics", "ok", 1),
                   _tool("pd:A", "confluence.search", "gap", 2), _tool("pd:B", "github.list_deployments", "error"),
                   _tool("pd:C", "datadog.get_monitor", "gap", -10 * 86400)):
        await audit.tool_call(record)
    for outcome, cost in (("schema_error", 0.01), ("repaired", 0.012), ("ok", 0.008), ("http_error", 0.0),
                          ("cache_hit", 0.0)):
        await audit.model_call(_model("pd:A", outcome, cost))
    await audit.brief_check(BriefCheckRecord(brief_key="pd:A", actor=None, drafter="llm", outcome="ok",
                                             coverage=1.0, at=T0))
    await audit.brief_check(BriefCheckRecord(brief_key="pd:B", actor=None, drafter="offline", outcome="fixed",
                                             coverage=0.8, problems=["an uncited claim"], at=T0))
    rejected = await approvals.propose(incident_key="pd:A", brief_version=2, proposal={"summary": "A"},
                                       requested_by="U1")
    await approvals.reject(rejected.id, "U4", "not a ticket")
    filed = await approvals.propose(incident_key="pd:B", brief_version=1, proposal={"summary": "B"},
                                    requested_by="U2")
    await approvals.revise(filed.id, {"summary": "B, edited"})
    await approvals.approve(filed.id, "U2", forbid_self_approval=False)
    await approvals.claim_for_execution(filed.id)
    await approvals.complete(filed.id, "CHK-7")
    await store.add_spend(user="U1", workspace="T0SANDBOX", usd=0.5, tokens=9000, at=T0)


@pytest.fixture
async def reports(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> Reports:
    await _history(sessions, clock)
    return Reports(sessions)


async def test_the_report_counts_what_happened_in_the_window(reports: Reports) -> None:
    report = await reports.trust_report(since=SINCE, until=UNTIL)
    assert (report.incidents, report.briefs) == (2, 3)
    assert report.by_trigger == {"pagerduty": 2, "refresh": 1}
    assert report.causes == {"deploy": 1, "config": 1}
    assert report.citation_coverage == pytest.approx(0.9)
    assert report.briefs_fixed_by_check == 1
    assert (report.model_requests, report.schema_passed, report.schema_checked) == (5, 2, 3)
    assert report.schema_pass_rate == pytest.approx(2 / 3)
    assert {(s.source, s.calls, s.gaps, s.errors) for s in report.tool_sources} == {
        ("datadog", 2, 0, 0), ("confluence", 1, 1, 0), ("github", 1, 0, 1)}
    assert (report.fallbacks, report.fallback_reasons) == (1, {"every model failed": 1})
    assert (report.latency_p50_ms, report.latency_p95_ms) == (1200.0, 3000.0)
    assert report.cost_usd == pytest.approx(0.03)
    assert report.cost_per_brief == pytest.approx(0.01)
    assert (report.votes_up, report.votes_down) == (1, 1)
    assert (report.tickets_filed, report.tickets_edited, report.tickets_rejected) == (1, 1, 1)
    assert report.refreshed_incidents == 1
    assert report.override_rate == 1.0  # A refreshed and its ticket rejected; B voted down, its ticket edited


async def test_the_audit_of_one_incident_tells_its_whole_story(reports: Reports) -> None:
    found = await reports.incident_audit("pd:A")
    assert found is not None
    assert [(b.version, b.trigger, b.requested_by, b.latency_ms, b.cause) for b in found.briefs] == [
        (1, "pagerduty", None, 1200.0, "deploy"), (2, "refresh", "U1", 800.0, "deploy")]
    assert [vote.vote for vote in found.briefs[1].feedback] == ["up"]
    assert [call.tool for call in found.tool_calls] == [
        "datadog.get_monitor", "datadog.query_metrics", "confluence.search"]
    assert [call.outcome for call in found.model_calls] == ["schema_error", "repaired", "ok", "http_error",
                                                            "cache_hit"]
    assert found.cost_usd == pytest.approx(0.03)
    assert [(a.state.value, a.error) for a in found.approvals] == [("rejected", "rejected by U4: not a ticket")]
    b = await reports.incident_audit("pd:B")
    assert b is not None
    assert b.tickets == ["CHK-7"]
    assert b.approvals[0].edited
    assert b.briefs[0].fallback_reason is not None
    assert await reports.incident_audit("pd:NOPE") is None


async def test_spend_is_shown_against_the_limits(reports: Reports) -> None:
    lines = await reports.spend_report(day=T0.date(), per_user_limit=2.0, per_workspace_limit=500.0)
    assert {(line.scope, line.subject, line.period, line.usd, line.limit_usd) for line in lines} == {
        ("user", "U1", "2026-06-01", 0.5, 2.0), ("workspace", "T0SANDBOX", "2026-06", 0.5, 500.0)}
    assert next(line for line in lines if line.scope == "user").used == 0.25
    named = await reports.spend_report(day=T0.date(), per_user_limit=2.0, per_workspace_limit=500.0, user="U9")
    assert [(line.scope, line.subject, line.usd) for line in named] == [
        ("workspace", "T0SANDBOX", 0.5), ("user", "U9", 0.0)]
    one_space = await reports.spend_report(day=T0.date(), per_user_limit=2.0, per_workspace_limit=500.0,
                                           workspace="T0SANDBOX")
    assert [line.scope for line in one_space] == ["workspace"]


def test_percentile_is_a_latency_that_happened() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


async def test_the_commands_answer_from_the_configured_store(db_url: str, reports: Reports, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"IB_DATABASE_URL": db_url, "COLUMNS": "200"}

    def run(*args: str) -> tuple[int, str]:
        outcome = runner.invoke(app, list(args), env=env)
        return outcome.exit_code, outcome.output

    # The CLI runs its own event loop (asyncio.run): give it a thread of its own.
    code, out = await asyncio.to_thread(run, "audit", "pd:B")
    assert code == 0, out
    assert "CHK-7" in out
    assert "edited before approval" in out
    assert "github.list_deployments" in out
    code, out = await asyncio.to_thread(run, "spend", "--user", "U1", "--day", "2026-06-01")
    assert code == 0, out
    assert "U1" in out
    assert "T0SANDBOX" in out
    assert "25%" in out
    code, out = await asyncio.to_thread(run, "report", "--since", "3650d")
    assert code == 0, out
    assert "4 for 3 incidents" in out, out
    assert "67% of 3 model answers" in out, out
    code, out = await asyncio.to_thread(run, "audit", "B")
    assert code == 1
    assert "did you mean pd:B?" in out
    code, out = await asyncio.to_thread(run, "audit", "100%_")
    assert code == 1
    assert "keys look like" in out, "LIKE wildcards in the argument are taken literally"
    report_json = tmp_path / "report.json"
    code, out = await asyncio.to_thread(run, "report", "--since", "3650d", "--json", str(report_json))
    assert code == 0, out
    assert json.loads(report_json.read_text())["tickets_filed"] == 1
    code, out = await asyncio.to_thread(run, "audit", "pd:NOPE")
    assert code == 1
    assert "no incident 'pd:NOPE'" in out
    code, out = await asyncio.to_thread(run, "report", "--since", "seven days")
    assert code == 2
    assert "expected a positive number and a unit" in out
