"""The canary's state and numbers in the store, on SQLite and PostgreSQL: switching off happens
once with its audit row, an operator switches it back on, each side's numbers come from the
model calls and the votes, and `incident-brief canary` shows it all."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from bot.app.cli import app
from bot.core.audit import ModelCallRecord
from bot.store.audit import StoreAudit
from bot.store.canary import SWITCHED_OFF, SWITCHED_ON, CanaryStore
from bot.store.repo import Store
from tests.helpers.briefs import result
from tests.helpers.db import T0, Clock

BASE, CANDIDATE = "openai:gpt-4.1@2025-04-14", "anthropic:claude-haiku-4-5@20251001"


def _call(key: str, arm: str, model: str, outcome: str, latency: float = 1000.0, cost: float = 0.01,
          ) -> ModelCallRecord:
    return ModelCallRecord(brief_key=key, actor=None, task="brief", model=model, prompt_version="brief@1",
                           cost_usd=cost, latency_ms=latency, outcome=outcome, arm=arm, at=T0)


async def test_switching_off_happens_once_with_its_audit_row_and_back_on(
        sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    canaries = CanaryStore(sessions, clock=clock)
    assert not await canaries.switched_off("brief", CANDIDATE)
    won = await asyncio.gather(*(canaries.switch_off("brief", CANDIDATE, reason="worse", actor="canary-watch",
                                                     data={"worse": ["validation failures"]}) for _ in range(3)))
    assert sorted(won) == [False, False, True], "of three watchers at once, one switches it off"
    assert await canaries.switched_off("brief", CANDIDATE)
    assert not await canaries.switched_off("brief", "openai:other@1"), "per model: a new candidate starts live"
    assert await canaries.switch_on("brief", CANDIDATE, actor="alice")
    assert not await canaries.switch_on("brief", CANDIDATE, actor="alice")
    assert not await canaries.switched_off("brief", CANDIDATE)
    events = await canaries.events()
    assert [(e.kind, e.actor, e.subject) for e in events] == [
        (SWITCHED_OFF, "canary-watch", f"brief:{CANDIDATE}"), (SWITCHED_ON, "alice", f"brief:{CANDIDATE}")]
    assert events[0].data == {"worse": ["validation failures"]}
    assert events[0].at == T0


async def test_each_side_is_counted_from_its_model_calls_and_votes(
        sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    store, canaries = Store(sessions, clock=clock), CanaryStore(sessions, clock=clock)
    audit = StoreAudit(store)
    calls = [
        _call("pd:B1", "baseline", BASE, "ok", latency=1000),
        _call("pd:B2", "baseline", BASE, "cache_hit", latency=0, cost=0.0),
        # C1: the candidate's first answer failed validation, the repair passed
        _call("pd:C1", "canary", CANDIDATE, "schema_error", latency=2000),
        _call("pd:C1", "canary", CANDIDATE, "repaired", latency=2000),
        # C2: the candidate failed; the baseline model answered (a fallback of the canary side)
        _call("pd:C2", "canary", CANDIDATE, "http_error", latency=500, cost=0.0),
        _call("pd:C2", "canary", BASE, "ok", latency=1000),
    ]
    for call in calls:
        await audit.model_call(call)
    await audit.model_call(ModelCallRecord(brief_key="pd:X", actor=None, task="brief", model=BASE,
                                           prompt_version="brief@1", outcome="ok", at=T0))  # no canary: not counted
    for key in ("pd:C1", "pd:B1"):
        await store.claim_incident(key=key, service="checkout-api", title="t", channel="C1")
        await store.save_brief(key, result())
    await store.save_feedback(incident_key="pd:C1", version=1, user="U1", vote="down")
    await store.save_feedback(incident_key="pd:B1", version=1, user="U1", vote="up")
    stats = await canaries.arm_stats("brief", since=T0, models={"baseline": BASE, "canary": CANDIDATE})
    base, canary = stats["baseline"], stats["canary"]
    assert (base.briefs, base.requests, base.validation_failures, base.fallbacks) == (2, 1, 0, 0)
    assert (canary.briefs, canary.requests, canary.validation_failures, canary.fallbacks) == (2, 4, 1, 1)
    assert canary.latency_ms == pytest.approx(1375.0)
    assert canary.cost_usd == pytest.approx(0.03)
    assert (base.voted, base.down, canary.voted, canary.down) == (1, 0, 1, 1)
    later = await canaries.arm_stats("brief", since=T0.replace(year=2027), models={"canary": CANDIDATE})
    assert later["canary"].briefs == 0


async def test_the_canary_command_shows_both_sides_and_switches_back_on(
        db_url: str, sessions: async_sessionmaker[AsyncSession]) -> None:
    canaries = CanaryStore(sessions)
    await canaries.switch_off("brief", CANDIDATE, reason="brief: canary is worse: fallbacks 50% vs 0%",
                              actor="canary-watch")
    env = {"IB_DATABASE_URL": db_url, "COLUMNS": "200",
           "IB_LLM__CANARY__ROUTES": f'{{"brief": {{"model": "{CANDIDATE}", "share": 0.25}}}}'}
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        outcome = runner.invoke(app, list(args), env=env)
        return outcome.exit_code, outcome.output

    code, out = await asyncio.to_thread(run, "canary")
    assert code == 0, out
    assert "switched off" in out
    assert "fallbacks 50% vs 0%" in out
    code, out = await asyncio.to_thread(run, "canary", "on", "brief", "--by", "alice")
    assert code == 0, out
    assert "switched back on" in out
    code, out = await asyncio.to_thread(run, "canary")
    assert "live, 25% of incidents" in out
    assert "canary_switched_on" in out
    assert not await canaries.switched_off("brief", CANDIDATE)
