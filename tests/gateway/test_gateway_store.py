"""The gateway on the real store (SQLite through the migrations): cache, spend ledger and audit rows."""

from __future__ import annotations

from pathlib import Path

from bot.core.models import Brief
from bot.draft.prompts import render_brief_prompt
from bot.gateway import Caller, Gateway
from bot.store.audit import StoreAudit
from bot.store.db import create_engine_for, migrate, session_factory
from bot.store.repo import Store
from sandbox.scenario import Scenario
from tests.helpers.gateway import PRIMARY, Scripted, good_brief, rules, scenario_inputs, settings


async def test_cache_ledger_and_audit_on_the_real_store(tmp_path: Path, search_injection: Scenario) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    await migrate(url)
    engine = create_engine_for(url)
    store = Store(session_factory(engine))
    alert, service, _window, evidence = scenario_inputs(search_injection)
    prompt = render_brief_prompt(alert, service, evidence, [], budget_tokens=3000)
    primary = Scripted(['{"broken', good_brief(list(prompt.packed.included))])
    gateway = Gateway(settings(), store=store, audit=StoreAudit(store), rules=rules(),
                      models={PRIMARY: primary.model()})
    caller = Caller(brief_key="request:store-test", user="U1", workspace="T1")
    try:
        first = await gateway.run("brief", prompt, Brief, caller=caller)
        second = await gateway.run("brief", prompt, Brief, caller=caller)

        assert len(primary.seen) == 2  # the answer and its repair, then a cache hit
        assert second.cache_hit
        assert second.output == first.output
        today = store.clock().date()
        assert (await store.spend_today("U1", today)).usd == round(first.cost_usd, 6)
        assert (await store.spend_month("T1", today)).tokens == first.input_tokens + first.output_tokens
        rows = await store.list_model_calls("request:store-test")
        assert [(r.outcome, r.cache_hit) for r in rows] == [("schema_error", False), ("repaired", False),
                                                            ("cache_hit", True)]
        assert {r.prompt_version for r in rows} == {prompt.version}
    finally:
        await engine.dispose()
