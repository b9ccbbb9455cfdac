"""The store on SQLite and PostgreSQL: incidents, brief versions, feedback, webhook dedupe, the
spend ledger, the response cache and the audit trail. Races are real concurrent calls."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.audit import BriefCheckRecord, ModelCallRecord, ToolCallRecord
from bot.core.models import (
    Alert,
    Brief,
    BriefResult,
    Claim,
    DraftInfo,
    Evidence,
    EvidenceKind,
    Provenance,
    Source,
    evidence_id,
)
from bot.store.audit import StoreAudit
from bot.store.repo import SpendTotal, Store, UnknownRecord
from tests.helpers.db import T0, Clock

ALERT = Alert(via="pagerduty", title="checkout-api 5xx", service="checkout-api",
              triggered_at=datetime(2026, 6, 1, 14, 1, tzinfo=UTC), incident_id="Q1",
              details={"monitor": 42})


@pytest.fixture
def timed(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> Store:
    """A store on a hand-moved clock, for TTLs, retention and ordering."""
    return Store(sessions, clock=clock)


def _evidence(ref: str) -> Evidence:
    return Evidence(id=evidence_id(EvidenceKind.DEPLOY, ref), kind=EvidenceKind.DEPLOY, source=Source.GITHUB,
                    title=f"deploy {ref}", excerpt="v2.3.1 to prod", link=f"https://github.example/d/{ref}",
                    provenance=Provenance(system=Source.GITHUB, tool="github.deployments",
                                          request="GET /repos/acme/checkout/deployments", fetched_at=T0))


def _result(headline: str, evidence: list[Evidence] | None = None) -> BriefResult:
    brief = Brief(headline=Claim(text=headline, citations=["m-1"]), impact=Claim(text="5xx", citations=["m-1"]),
                  draft=DraftInfo(drafter="llm", model="sandbox-model", prompt_version="brief-v3"))
    return BriefResult(brief=brief, evidence=evidence or [], gaps=[])


async def _claim(store: Store, key: str = "pd:Q1", channel: str | None = "C1", alert: Alert | None = None) -> bool:
    return await store.claim_incident(key=key, service="checkout-api", title="5xx", channel=channel, alert=alert)


# --- incidents -------------------------------------------------------------------------------


async def test_exactly_one_caller_claims_an_incident(store: Store) -> None:
    claims = await asyncio.gather(*(_claim(store, alert=ALERT) for _ in range(8)))
    assert sorted(claims) == [False] * 7 + [True]
    incident = await store.get_incident("pd:Q1")
    assert incident is not None
    assert (incident.key, incident.service, incident.title) == ("pd:Q1", "checkout-api", "5xx")
    assert incident.status == "triggered"
    assert incident.channel == "C1"
    assert incident.message_ts is None
    assert incident.alert == ALERT


async def test_a_later_claim_changes_nothing(store: Store) -> None:
    assert await _claim(store, alert=ALERT)
    assert not await store.claim_incident(key="pd:Q1", service="other", title="retry", channel="C9")
    incident = await store.get_incident("pd:Q1")
    assert incident is not None
    assert (incident.service, incident.title, incident.channel) == ("checkout-api", "5xx", "C1")
    assert incident.alert == ALERT


async def test_an_incident_without_an_alert_or_channel(store: Store) -> None:
    assert await _claim(store, key="cli:1", channel=None)
    incident = await store.get_incident("cli:1")
    assert incident is not None
    assert incident.alert is None
    assert incident.channel is None
    assert await store.get_incident("pd:nope") is None


async def test_the_brief_message_is_found_from_its_thread_and_channel(timed: Store, clock: Clock) -> None:
    await _claim(timed, key="pd:Q1")
    await timed.set_incident_message("pd:Q1", channel="C1", ts="111.1")
    clock.advance(timedelta(minutes=1))
    await _claim(timed, key="pd:Q2")
    await timed.set_incident_message("pd:Q2", channel="C1", ts="222.2", thread_ts="200.0")

    in_thread = await timed.incident_for_thread("C1", "111.1")
    assert in_thread is not None
    assert in_thread.key == "pd:Q1"
    posted_in_a_thread = await timed.incident_for_thread(channel="C1", thread_ts="200.0")
    assert posted_in_a_thread is not None
    assert posted_in_a_thread.key == "pd:Q2"
    assert await timed.incident_for_thread(channel="C2", thread_ts="111.1") is None
    assert await timed.incident_for_thread(channel="C1", thread_ts=None) is None

    latest = await timed.latest_incident_in_channel("C1")
    assert latest is not None
    assert (latest.key, latest.message_ts, latest.slack_thread_ts) == ("pd:Q2", "222.2", "200.0")
    assert await timed.latest_incident_in_channel("C404") is None


async def test_status_updates_and_unknown_incidents(store: Store) -> None:
    await _claim(store)
    await store.set_incident_status("pd:Q1", "resolved")
    assert [i.key for i in await store.list_incidents(status="resolved")] == ["pd:Q1"]
    assert await store.list_incidents(status="triggered") == []
    with pytest.raises(UnknownRecord, match="no incident 'pd:nope'"):
        await store.set_incident_message("pd:nope", channel="C1", ts="1.1")
    with pytest.raises(UnknownRecord):
        await store.set_incident_status("pd:nope", "resolved")


async def test_save_incident_keeps_slack_fields_it_is_not_given(store: Store) -> None:
    await store.save_incident(key="pd:Q1", service="checkout-api", title="5xx", status="triggered",
                              slack_channel="C1", slack_ts="1.1")
    updated = await store.save_incident(key="pd:Q1", service="checkout-api", title="5xx (ack)",
                                        status="acknowledged")
    assert (updated.title, updated.status, updated.channel, updated.message_ts) == (
        "5xx (ack)", "acknowledged", "C1", "1.1")


# --- briefs ----------------------------------------------------------------------------------


async def test_brief_versions_are_distinct_under_concurrency(store: Store) -> None:
    await _claim(store)
    versions = await asyncio.gather(*(store.save_brief("pd:Q1", _result(f"v{i}")) for i in range(6)))
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]
    latest = await store.get_brief("pd:Q1")
    assert latest is not None
    assert latest.version == 6
    assert [b.version for b in await store.list_briefs("pd:Q1")] == [1, 2, 3, 4, 5, 6]


async def test_a_brief_round_trips_with_its_evidence(store: Store) -> None:
    await _claim(store)
    deploy, other = _evidence("a5999c"), _evidence("b1")
    first = await store.save_brief("pd:Q1", _result("first", [deploy, deploy, other]))
    second = await store.save_brief("pd:Q1", _result("second", [other]))
    assert (first, second) == (1, 2)

    old = await store.get_brief("pd:Q1", 1)
    assert old is not None
    assert old.result.brief.headline.text == "first"
    assert old.evidence == [deploy, deploy, other], "the result is stored as given"
    assert (old.drafter, old.model, old.prompt_version) == ("llm", "sandbox-model", "brief-v3")
    assert await store.list_evidence("pd:Q1", 1) == [deploy, other], "one row per evidence id"
    latest = await store.get_brief("pd:Q1")
    assert latest is not None
    assert latest.result.brief.headline.text == "second"
    assert await store.get_brief("pd:Q1", 3) is None
    assert await store.get_brief("pd:nope") is None


async def test_a_brief_needs_its_incident(store: Store) -> None:
    with pytest.raises(UnknownRecord, match="no incident 'pd:nope'"):
        await store.save_brief("pd:nope", _result("orphan"))


# --- feedback --------------------------------------------------------------------------------


async def test_one_vote_per_person_per_version(store: Store) -> None:
    await _claim(store)
    await store.save_brief("pd:Q1", _result("v1"))
    await store.save_feedback(incident_key="pd:Q1", version=1, user="U1", vote="up")
    await store.save_feedback(incident_key="pd:Q1", version=1, user="U2", vote="up")
    await store.save_feedback(incident_key="pd:Q1", version=1, user="U1", vote="down", reason="wrong deploy")
    votes = {(f.user, f.vote, f.reason) for f in await store.list_feedback("pd:Q1", 1)}
    assert votes == {("U1", "down", "wrong deploy"), ("U2", "up", None)}
    with pytest.raises(ValueError, match="vote must be"):
        await store.save_feedback(incident_key="pd:Q1", version=1, user="U1", vote="meh")  # type: ignore[arg-type]
    with pytest.raises(UnknownRecord, match="no brief 'pd:Q1' v2"):
        await store.save_feedback(incident_key="pd:Q1", version=2, user="U1", vote="up")


# --- webhook dedupe --------------------------------------------------------------------------


async def test_a_webhook_delivery_is_recorded_once(timed: Store, clock: Clock) -> None:
    firsts = await asyncio.gather(*(timed.record_webhook_delivery("delivery-1") for _ in range(8)))
    assert firsts.count(True) == 1
    assert await timed.record_webhook_delivery("delivery-1", source="slack"), "sources are separate"
    assert await timed.record_webhook_delivery("delivery-2")
    clock.advance(timedelta(days=3))
    assert await timed.purge_webhook_deliveries(clock() - timedelta(days=2)) == 3
    assert await timed.record_webhook_delivery("delivery-1"), "forgotten after retention"


# --- spend -----------------------------------------------------------------------------------


async def test_concurrent_spend_increments_are_exact(store: Store) -> None:
    at = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    totals = await asyncio.gather(*(store.add_spend(user="U1", workspace="T1", usd=0.1, tokens=10, at=at)
                                     for _ in range(20)))
    day = await store.spend_today("U1", date(2026, 6, 1))
    assert day.usd == 2.0, "integer micro-dollars: no float drift"
    assert day.tokens == 200
    month = await store.spend_month("T1", date(2026, 6, 17))
    assert (month.usd, month.tokens) == (2.0, 200)
    # Each call saw its own running total: all different, the largest is the final one.
    assert sorted(t.workspace_month.tokens for t in totals) == list(range(10, 201, 10))


async def test_spend_periods_are_utc_days_and_months(store: Store) -> None:
    await store.add_spend(user="U1", workspace="T1", usd=1.0, tokens=100,
                          at=datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
    # 01:30 on July 1st in UTC, though still June 30th in New York.
    totals = await store.add_spend(user="U1", workspace="T1", usd=0.5, tokens=50,
                                   at=datetime(2026, 6, 30, 21, 30, tzinfo=UTC) + timedelta(hours=4))
    assert totals.user_day is not None
    assert totals.user_day.usd == 0.5
    assert (await store.spend_today("U1", date(2026, 6, 30))).usd == 1.0
    assert (await store.spend_today("U1", date(2026, 7, 1))).usd == 0.5
    assert (await store.spend_month("T1", date(2026, 6, 1))).tokens == 100
    assert (await store.spend_month("T1", date(2026, 7, 31))).tokens == 50
    assert (await store.spend_today("U2", date(2026, 7, 1))).usd == 0.0


async def test_spend_totals_read_the_users_day_and_the_workspaces_month_together(store: Store) -> None:
    june_30 = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
    await store.add_spend(user="U1", workspace="T1", usd=1.0, tokens=100, at=june_30)
    await store.add_spend(user="U1", workspace="T1", usd=0.5, tokens=50, at=june_30 - timedelta(days=1))
    await store.add_spend(user="U2", workspace="T1", usd=0.25, tokens=25, at=june_30)
    await store.add_spend(user="U1", workspace="T2", usd=4.0, tokens=400, at=june_30)

    totals = await store.spend_totals(user="U1", workspace="T1", day=date(2026, 6, 30))
    assert totals.user_day == SpendTotal(usd=5.0, tokens=500), "the user's day, across workspaces"
    assert totals.workspace_month == SpendTotal(usd=1.75, tokens=175), "the workspace's month, every user"
    alone = await store.spend_totals(user=None, workspace="T1", day=date(2026, 6, 1))
    assert (alone.user_day, alone.workspace_month.usd) == (None, 1.75)
    nothing = await store.spend_totals(user="U9", workspace="T9", day=date(2026, 7, 1))
    assert (nothing.user_day, nothing.workspace_month) == (SpendTotal(0.0, 0), SpendTotal(0.0, 0))


async def test_a_pagerduty_brief_charges_the_workspace_only(store: Store) -> None:
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    totals = await store.add_spend(user=None, workspace="T1", usd=0.25, tokens=30, at=at)
    assert totals.user_day is None
    assert totals.workspace_month.usd == 0.25
    with pytest.raises(ValueError, match="negative"):
        await store.add_spend(user="U1", workspace="T1", usd=-1.0, tokens=0, at=at)


# --- response cache --------------------------------------------------------------------------


async def test_cache_entries_expire_after_their_ttl(timed: Store, clock: Clock) -> None:
    await timed.cache_put("k", {"brief": 1, "ids": ["a"]}, ttl=timedelta(minutes=5))
    assert await timed.cache_get("k") == {"brief": 1, "ids": ["a"]}
    assert await timed.cache_get("other") is None
    clock.advance(timedelta(minutes=4, seconds=59))
    assert await timed.cache_get("k") == {"brief": 1, "ids": ["a"]}
    clock.advance(timedelta(seconds=1))
    assert await timed.cache_get("k") is None, "expired at exactly the TTL"
    await timed.cache_put("k", {"brief": 2}, ttl=timedelta(minutes=5))
    assert await timed.cache_get("k") == {"brief": 2}, "a put replaces an expired entry"


async def test_cache_replace_purge_and_refusals(timed: Store, clock: Clock) -> None:
    await timed.cache_put("short", [1, 2], ttl=timedelta(seconds=10))
    await timed.cache_put("long", "text", ttl=timedelta(hours=1))
    await timed.cache_put("long", "newer", ttl=timedelta(hours=1))
    assert await timed.cache_get("long") == "newer"
    clock.advance(timedelta(minutes=1))
    assert await timed.purge_cache() == 1
    assert await timed.cache_get("long") == "newer"
    with pytest.raises(ValueError, match="cannot cache None"):
        await timed.cache_put("k", None, ttl=timedelta(minutes=1))
    with pytest.raises(ValueError, match="ttl must be positive"):
        await timed.cache_put("k", 1, ttl=timedelta(0))


# --- audit -----------------------------------------------------------------------------------


async def test_audit_rows_round_trip_and_retention_purges_every_kind(store: Store) -> None:
    now = datetime.now(UTC)
    sink = StoreAudit(store)
    old_tool = ToolCallRecord(brief_key="pd:Q1", tool="jira.search", actor="U1", decision="allow",
                              decision_reason="listed", outcome="ok", detail="3 issues", evidence_count=3,
                              latency_ms=12.5, args={"jql": "project = CHK", "since": now}, at=now - timedelta(days=40))
    new_tool = old_tool.model_copy(update={"at": now, "outcome": "gap"})
    old_model = ModelCallRecord(brief_key="pd:Q1", actor=None, task="brief", model="sandbox-model",
                                prompt_version="brief-v3", input_tokens=900, output_tokens=200, cost_usd=0.004,
                                cache_hit=True, at=now - timedelta(days=31))
    new_model = old_model.model_copy(update={"at": now})
    for record in (old_tool, new_tool):
        await sink.tool_call(record)
    for model_record in (old_model, new_model):
        await sink.model_call(model_record)
    old_check = BriefCheckRecord(brief_key="pd:Q1", actor=None, drafter="llm", model="sandbox-model",
                                 outcome="fixed", coverage=0.75,
                                 problems=["headline: cites unknown evidence deploy-ffffff"],
                                 at=now - timedelta(days=35))
    new_check = old_check.model_copy(update={"at": now, "outcome": "ok", "coverage": 1.0, "problems": []})
    for check in (old_check, new_check):
        await sink.brief_check(check)

    tools = await store.list_tool_calls("pd:Q1")
    assert [t.outcome for t in tools] == ["ok", "gap"]
    assert tools[0].args == {"jql": "project = CHK", "since": now.isoformat().replace("+00:00", "Z")}
    assert tools[0].at == old_tool.at
    assert (await store.list_model_calls("pd:Q1"))[0] == old_model
    assert await store.list_brief_checks("pd:Q1") == [old_check, new_check]

    assert await store.purge_audit(now - timedelta(days=30)) == 3
    assert await store.list_tool_calls("pd:Q1") == [new_tool.model_copy(update={"args": tools[1].args})]
    assert await store.list_model_calls("pd:Q1") == [new_model]
    assert await store.list_brief_checks("pd:Q1") == [new_check]
    assert await store.purge_audit(now - timedelta(days=30)) == 0


async def test_naive_timestamps_are_refused(store: Store) -> None:
    record = ToolCallRecord(brief_key="pd:Q1", tool="jira.search", actor=None, decision="allow",
                            decision_reason="listed", outcome="ok", at=datetime(2026, 6, 1, 12, 0))
    with pytest.raises(Exception, match="naive datetime"):
        await store.add_tool_call(record)
