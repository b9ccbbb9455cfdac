"""The store and the approval state machine on SQLite and PostgreSQL: the database decides races."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.approvals import Approvals, ApprovalState, ApprovalStateError
from bot.audit import ToolCallRecord
from bot.models import Alert, Brief, BriefResult, Claim, TicketProposal
from bot.store.repo import Store
from bot.store.tables import Base

ALERT = Alert(via="pagerduty", title="checkout-api 5xx", service="checkout-api",
              triggered_at=datetime(2026, 6, 1, 14, 1, tzinfo=UTC), incident_id="Q1")
PROPOSAL = TicketProposal(project="CHK", summary="checkout-api 5xx after v2.3.1", description="cited",
                          citations=["deploy-a5999c"])


def _result(headline: str) -> BriefResult:
    brief = Brief(headline=Claim(text=headline, citations=["m-1"]), impact=Claim(text="5xx", citations=["m-1"]))
    return BriefResult(brief=brief, evidence=[], gaps=[])


async def test_exactly_one_caller_claims_an_incident(store: Store) -> None:
    claims = await asyncio.gather(*(store.claim_incident(key="pd:Q1", service="checkout-api", title="5xx",
                                                         channel="C1", alert=ALERT) for _ in range(6)))
    assert sorted(claims) == [False] * 5 + [True]
    incident = await store.get_incident("pd:Q1")
    assert incident is not None
    assert incident.alert == ALERT
    assert incident.status == "triggered"


async def test_the_brief_message_is_found_from_its_thread_and_channel(store: Store) -> None:
    await store.claim_incident(key="pd:Q1", service="checkout-api", title="5xx", channel="C1")
    await store.set_incident_message("pd:Q1", channel="C1", ts="111.1")
    assert (await store.incident_for_thread(channel="C1", thread_ts="111.1")).key == "pd:Q1"  # type: ignore[union-attr]
    assert await store.incident_for_thread(channel="C2", thread_ts="111.1") is None
    assert (await store.latest_incident_in_channel("C1")).message_ts == "111.1"  # type: ignore[union-attr]


async def test_brief_versions_are_distinct_under_concurrency(store: Store) -> None:
    await store.claim_incident(key="pd:Q1", service="checkout-api", title="5xx", channel="C1")
    versions = await asyncio.gather(*(store.save_brief("pd:Q1", _result(f"v{i}")) for i in range(4)))
    assert sorted(versions) == [1, 2, 3, 4]
    latest = await store.get_brief("pd:Q1")
    assert latest is not None
    assert latest.version == 4
    first = await store.get_brief("pd:Q1", 1)
    assert first is not None
    assert first.result.brief.headline.text.startswith("v")


async def test_a_webhook_delivery_is_recorded_once(store: Store) -> None:
    firsts = await asyncio.gather(*(store.record_webhook_delivery("delivery-1") for _ in range(5)))
    assert firsts.count(True) == 1


async def test_spend_ledger_cache_and_audit_retention(store: Store) -> None:
    await store.add_spend(user="U1", workspace="T1", usd=0.5, tokens=1000)
    await store.add_spend(user="U1", workspace="T1", usd=0.25, tokens=500)
    today = store.clock().date()
    assert (await store.spend_today("U1", today)).usd == pytest.approx(0.75)
    assert (await store.spend_month("T1", today)).tokens == 1500
    await store.cache_put("k", {"brief": 1}, ttl=timedelta(minutes=5))
    assert await store.cache_get("k") == {"brief": 1}
    old = ToolCallRecord(brief_key="pd:Q1", tool="jira.search", actor=None, decision="allow",
                         decision_reason="listed", outcome="ok", at=store.clock() - timedelta(days=40))
    await store.add_tool_call(old)
    await store.add_tool_call(old.model_copy(update={"at": store.clock()}))
    assert await store.purge_audit(store.clock() - timedelta(days=30)) == 1
    assert len(await store.list_tool_calls("pd:Q1")) == 1


async def test_a_double_click_files_once(approvals: Approvals) -> None:
    first, second = await asyncio.gather(*(approvals.propose(incident_key="pd:Q1", brief_version=1,
                                                              proposal=PROPOSAL, requested_by="U1") for _ in range(2)))
    assert first.id == second.id, "the same proposal is one approval"
    await asyncio.gather(*(approvals.approve(first.id, "U1", forbid_self_approval=False) for _ in range(3)))
    claims = await asyncio.gather(*(approvals.claim_for_execution(first.id) for _ in range(5)))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].state is ApprovalState.EXECUTING
    done = await approvals.complete(first.id, "CHK-101")
    assert done.state is ApprovalState.DONE
    assert await approvals.claim_for_execution(first.id) is None


async def test_two_person_rule_needs_someone_besides_the_requester(approvals: Approvals) -> None:
    proposed = await approvals.propose(incident_key="pd:Q2", brief_version=1, proposal=PROPOSAL,
                                       requested_by="U1")
    alone = await approvals.approve(proposed.id, "U1", required_approvers=2, forbid_self_approval=False)
    assert alone.state is ApprovalState.PROPOSED
    both = await asyncio.gather(approvals.approve(proposed.id, "U2", required_approvers=2, forbid_self_approval=False),
                                approvals.approve(proposed.id, "U3", required_approvers=2, forbid_self_approval=False))
    assert any(a.state is ApprovalState.APPROVED for a in both)
    with pytest.raises(ApprovalStateError):
        await approvals.complete(proposed.id, "CHK-1")  # never claimed


async def test_a_restart_between_claim_and_create_is_recoverable(approvals: Approvals) -> None:
    proposed = await approvals.propose(incident_key="pd:Q3", brief_version=1, proposal=PROPOSAL,
                                       requested_by="U1")
    await approvals.approve(proposed.id, "U1", forbid_self_approval=False)
    claimed = await approvals.claim_for_execution(proposed.id)
    assert claimed is not None
    later = approvals.clock() + timedelta(minutes=10)
    stuck = await approvals.recover_stuck(later)
    assert [a.id for a in stuck] == [proposed.id]
    reset = await approvals.reset_to_approved(proposed.id, claimed_before=later)
    assert reset.state is ApprovalState.APPROVED
    assert await approvals.claim_for_execution(proposed.id) is not None


async def test_migrations_match_the_models(sessions: object, db_url: str) -> None:
    from bot.store.db import create_engine_for

    engine = create_engine_for(db_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    finally:
        await engine.dispose()
    assert diff == []
