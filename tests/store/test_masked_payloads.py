"""Issue 13, finding 3: nothing the store keeps holds a secret, raw payload columns included."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.audit import ControlRecord, ToolCallRecord
from bot.core.models import Alert
from bot.store.approvals import Approvals
from bot.store.audit import StoreAudit
from bot.store.repo import Store
from tests.helpers.leaks import database_text, leaks

AWS = "AKIAIOSFODNN7EXAMPLE"
GH = "ghp_1234567890abcdefghijklmnopqrstuvwxyz"
EMAIL = "jane.doe@example.com"


async def test_the_alert_title_details_and_mention_are_masked_before_they_are_stored(
        store: Store, sessions: async_sessionmaker[AsyncSession]) -> None:
    alert = Alert(via="slack_mention", title=f"checkout 5xx for {EMAIL} key {AWS}", service="checkout-api",
                  triggered_at=datetime(2026, 6, 3, 8, 12, tzinfo=UTC), mention_text=f"brief please {GH}",
                  details={"password": "hunter2hunter2", "note": f"token {GH}"})
    assert await store.claim_incident(key="pd:LEAK", service="checkout-api", title=alert.title, channel="C1",
                                      alert=alert)
    await store.save_incident(key="pd:LEAK2", service="checkout-api", title=f"ping {EMAIL}", status="triggered")
    assert await store.record_webhook_delivery(f"delivery-{GH}")
    assert not await store.record_webhook_delivery(f"delivery-{GH}")  # still deduped, by its hash
    await StoreAudit(store).tool_call(ToolCallRecord(
        brief_key="pd:LEAK", tool="datadog.search_logs", actor=None, decision="allow", decision_reason="ok",
        outcome="error", detail=f"401 for {GH}", args={"query": f"service:checkout {EMAIL}"}))
    await store.add_control_event(ControlRecord(kind="alert_not_posted", subject=f"svc {AWS}", actor="web",
                                                detail=f"for {EMAIL}", data={"service": f"name {GH}"}))
    tables = await database_text(sessions)
    found = {column: leaks(text, [AWS, GH, EMAIL, "hunter2hunter2"]) for column, text in tables.items()}
    assert {column: hit for column, hit in found.items() if hit} == {}
    stored = await store.get_incident("pd:LEAK")
    assert stored is not None
    assert stored.alert is not None
    assert "[REDACTED:aws_key]" in stored.alert.title  # still an Alert a refresh can use
    assert stored.alert.service == "checkout-api"


async def test_a_ticket_proposal_and_its_edits_are_masked_before_they_are_stored(
        store: Store, approvals: Approvals, sessions: async_sessionmaker[AsyncSession]) -> None:
    await store.claim_incident(key="pd:T", service="checkout-api", title="t", channel="C1")
    proposal = {"project": "CHK", "summary": f"5xx for {EMAIL}", "description": f"token {GH}"}
    approval = await approvals.propose(incident_key="pd:T", brief_version=1, proposal=proposal,
                                       requested_by="U0ONCALL1")
    await approvals.revise(approval.id, {**proposal, "summary": f"pasted {AWS} by mistake"})
    tables = await database_text(sessions)
    assert {column: hit for column, text in tables.items() if (hit := leaks(text, [AWS, GH, EMAIL]))} == {}
    stored = await approvals.get(approval.id)
    assert stored is not None
    assert stored.proposal["summary"] == "pasted [REDACTED:aws_key] by mistake"
