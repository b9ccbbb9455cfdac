"""One brief, one key: its tool calls, its model calls and its citation check are all filed under
the incident key (`bot.core.keys`), so the audit trail of a brief can be read in one query.

Drafted with the model drafter against the sandbox's simulated model, twice: through the
scenario harness (a PagerDuty incident and a Slack request, whose keys are built differently),
and through the live path, a signed PagerDuty webhook into the served bot with its SQL store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic_ai import models

from bot.draft.drafter import Drafter
from bot.gateway.drafter import llm_drafter
from bot.runtime import Runtime
from bot.store.audit import StoreAudit
from sandbox.harness import run_scenario
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.scenarios import scenario
from tests.helpers.slack_app import running_bot


@pytest.fixture(autouse=True)
def _allow_sandbox_model_requests() -> Iterator[None]:
    # conftest blocks model requests; these tests reach only the loopback sandbox's model.
    with models.override_allow_model_requests(True):
        yield


@pytest.mark.parametrize(("name", "key_prefix"), [
    ("checkout-5xx-after-deploy", "pd:"),  # a PagerDuty incident: keyed by its id
    ("search-latency-injection", "slack:"),  # a Slack request: keyed by where it was asked
])
async def test_every_audit_row_of_a_model_drafted_brief_has_the_incident_key(name: str, key_prefix: str) -> None:
    run = await run_scenario(scenario(name), drafter="llm")

    assert run.key.startswith(key_prefix)
    assert run.result.brief.draft.drafter == "llm", "the model path drafted it (no offline fallback)"
    audit = run.audit
    assert audit.tool_calls
    assert audit.model_calls
    assert audit.brief_checks
    assert {r.brief_key for r in audit.tool_calls} == {run.key}
    assert {r.brief_key for r in audit.model_calls} == {run.key}
    assert {r.brief_key for r in audit.brief_checks} == {run.key}


def _model_drafter(sb: Sandbox, rt: Runtime) -> Callable[[], Drafter]:
    """The runtime's drafter factory: the gateway over the sandbox's model, spending and
    auditing in the bot's own store (as a deployment with a model would)."""
    return lambda: llm_drafter(sb.settings().llm, rt.policy, store=rt.store, audit=StoreAudit(rt.store))


async def test_a_pagerduty_brief_in_slack_files_its_tool_and_model_calls_under_the_incident(
        checkout: Scenario, tmp_path: Path) -> None:
    async with running_bot(checkout, tmp_path / "keys.db", drafter=_model_drafter) as bot:
        body, headers = build_webhook(checkout, "incident.triggered")
        assert (await send_webhook(f"{bot.url}/webhooks/pagerduty", body, headers)).status_code == 202
        await wait_for(bot.brief_message, "the brief in Slack")
        await bot.rt.idle()

        key = f"pd:{checkout.alert.to_alert().incident_id}"
        latest = await bot.rt.store.get_brief(key)
        assert latest is not None
        assert latest.result.brief.draft.drafter == "llm"
        tool_calls = await bot.rt.store.list_tool_calls(key)
        model_calls = await bot.rt.store.list_model_calls(key)
        checks = await bot.rt.store.list_brief_checks(key)
        assert tool_calls
        assert model_calls
        assert [(c.drafter, c.model) for c in checks] == [("llm", latest.result.brief.draft.model)]
        # Nothing of this brief was filed under any other key (list_* filter by key, so count).
        assert len(bot.sb.recorder.requests("llm")) == len(model_calls)
