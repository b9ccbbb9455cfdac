"""Canary model upgrades: which incidents a candidate drafts, how the two sides are judged, and
the whole loop against the sandbox: a candidate whose first answers fail validation (the
sandbox's simulated model, misbehaving for that model name only) drafts its share of briefs
beside the baseline, the clock's canary watch switches it off in the store with an audit row
and a message in Slack, and the next brief of a canary incident goes to the baseline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.app.clock import CANARY_WATCH, Maintenance
from bot.core.config import CanaryRoute, CanarySettings, ModelPrice
from bot.draft.flow import build_brief
from bot.gateway.canary import arm_for, judge
from bot.gateway.drafter import llm_drafter
from bot.runtime import Runtime, utcnow
from bot.store.audit import StoreAudit
from bot.store.canary import SWITCHED_OFF, ArmStats
from bot.telemetry.metrics import registry
from sandbox.scenario import Scenario
from tests.helpers import gateway as gw
from tests.helpers.slack_app import sandboxed_runtime
from tests.helpers.telemetry import sandbox_model

CANDIDATE = "openai:gpt-4.1@2025-08-07"


def test_one_incident_always_gets_the_same_side_and_the_share_holds() -> None:
    keys = [f"pd:Q{i}" for i in range(2000)]
    sides = [arm_for(key, "brief", 0.2) for key in keys]
    assert sides == [arm_for(key, "brief", 0.2) for key in keys]
    assert 0.17 < sides.count("canary") / len(keys) < 0.23
    assert {arm_for(key, "brief", 0.0) for key in keys} == {"baseline"}
    assert {arm_for(key, "brief", 1.0) for key in keys} == {"canary"}
    assert arm_for(None, "brief", 1.0) == "baseline"


def test_the_canary_side_tries_the_candidate_first_then_the_baseline_chain() -> None:
    gateway = gw.gateway(gw.Scripted([]),
                         canary=CanarySettings(routes={"brief": CanaryRoute(model=gw.SECONDARY, share=0.5)}))
    assert [str(ref) for ref in gateway.chain("brief", "canary")] == [gw.SECONDARY, gw.PRIMARY]
    assert [str(ref) for ref in gateway.chain("brief", "baseline")] == [gw.PRIMARY, gw.SECONDARY]


def test_an_unpriced_candidate_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match=r"no entry in llm\.prices"):
        gw.gateway(gw.Scripted([]), canary=CanarySettings(routes={"brief": CanaryRoute(model="openai:new@1")}))


def test_a_canary_is_judged_worse_only_beyond_a_margin_and_with_enough_briefs() -> None:
    settings = CanarySettings(min_briefs=10, max_rate_increase=0.10, max_ratio=1.5)
    base = ArmStats(model="b", briefs=40, requests=44, validation_failures=2, fallbacks=1, latency_ms=1000,
                    cost_usd=0.40, voted=10, down=1)
    same = replace(base, model="c")
    assert judge("brief", base, same, settings).switch_off is False
    assert judge("brief", base, replace(same, briefs=5), settings).enough_data is False
    failing = judge("brief", base, replace(same, validation_failures=12), settings)
    assert failing.switch_off
    assert failing.worse == ["validation failures 27% vs 5%"]
    slow = judge("brief", base, replace(same, latency_ms=1600, cost_usd=0.80), settings)
    assert slow.worse == ["latency 1600 ms vs 1000 ms", "cost per brief $0.0200 vs $0.0100"]
    assert judge("brief", base, replace(same, latency_ms=1400), settings).switch_off is False
    disliked = judge("brief", base, replace(same, down=4), settings)
    assert disliked.worse == ["thumbs-down 40% vs 10%"]


def _switched_off_total() -> float:
    return registry.get_sample_value("incident_brief_canary_switched_off_total", {"route": "brief"}) or 0.0


def _keys(per_side: int) -> list[str]:
    """Incident keys, at least `per_side` on each side of a 50 % canary."""
    keys: list[str] = []
    counts = {"baseline": 0, "canary": 0}
    for i in range(1000):
        key = f"pd:QCANARY{i}"
        side = arm_for(key, "brief", 0.5)
        if counts[side] < per_side:
            counts[side] += 1
            keys.append(key)
        if min(counts.values()) >= per_side:
            return keys
    raise AssertionError("the hash never gave both sides enough keys")


async def _brief(rt: Runtime, scenario: Scenario, key: str, number: int) -> None:
    # A title of its own per incident: the prompt differs, so no answer comes from the cache.
    alert = scenario.alert.to_alert().model_copy(update={"title": f"{scenario.alert.title} #{number}"})
    service = rt.catalog.resolve(alert.service)
    drafter = llm_drafter(rt.settings.llm, rt.policy, store=rt.store, audit=StoreAudit(rt.store),
                          canary_states=rt.canaries)
    connectors = rt.new_connectors()
    try:
        await build_brief(alert, service, runner=rt.runner(brief_key=key, actor=None), connectors=connectors,
                          now=scenario.now, drafter=drafter)
    finally:
        await connectors.aclose()


async def test_a_canary_failing_validation_more_often_is_switched_off_with_an_audit_row(
        checkout: Scenario, tmp_path: Path) -> None:
    with sandbox_model():
        async with sandboxed_runtime(checkout, tmp_path / "canary.db") as (sb, rt):
            channel = "C0INCCHK"
            canary = CanarySettings(routes={"brief": CanaryRoute(model=CANDIDATE, share=0.5)}, min_briefs=3,
                                    channel=channel)
            llm = rt.settings.llm.model_copy(update={
                "canary": canary,
                "prices": {**rt.settings.llm.prices, CANDIDATE: ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0)}})
            rt.settings = rt.settings.model_copy(update={"llm": llm})
            # The candidate's first answer of every conversation breaks the schema (repaired on retry).
            sb.system("llm").model_behaviour["gpt-4.1-2025-08-07"] = "schema_violation"
            keys = _keys(per_side=3)
            for number, key in enumerate(keys):
                await _brief(rt, checkout, key, number)
            calls = {key: await rt.store.list_model_calls(key) for key in keys}
            canary_keys = [key for key in keys if arm_for(key, "brief", 0.5) == "canary"]
            assert {call.arm for key in canary_keys for call in calls[key]} == {"canary"}
            assert {call.model for key in canary_keys for call in calls[key]} == {CANDIDATE}
            assert all(any(c.outcome == "schema_error" for c in calls[key]) for key in canary_keys)

            rt.now = utcnow  # the audit rows carry the wall clock; so must the watch's window
            switched_before = _switched_off_total()
            assert await Maintenance(rt).watch_canaries() == 1
            assert await rt.canaries.switched_off("brief", CANDIDATE)
            [row] = await rt.store.list_control_events()
            assert (row.kind, row.subject, row.actor) == (SWITCHED_OFF, f"brief:{CANDIDATE}", CANARY_WATCH)
            assert "validation failures" in row.detail
            assert row.data["canary"]["validation_failures"] == len(canary_keys)
            assert row.data["baseline"]["validation_failures"] == 0
            said = [m for m in sb.system("slack").messages if m.channel == channel and "Canary switched off" in m.text]
            assert len(said) == 1
            assert _switched_off_total() == switched_before + 1
            assert await Maintenance(rt).watch_canaries() == 0, "switched off once, announced once"

            await _brief(rt, checkout, canary_keys[0], 99)  # the same incident again: the baseline now
            again = (await rt.store.list_model_calls(canary_keys[0]))[len(calls[canary_keys[0]]):]
            assert again
            assert {(call.arm, call.model) for call in again} == {(None, rt.settings.llm.routes["brief"])}
