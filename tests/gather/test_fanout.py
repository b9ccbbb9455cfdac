"""The fan-out's partial results, over real HTTP against the sandbox: `Gathering.wait(timeout)`
returns what is in at that moment with the slow source pending (and never cancels it), then
everything, folded in plan order as `gather` folds it; per-source timeouts come from the policy."""

from __future__ import annotations

from bot.core.audit import MemoryAudit
from bot.core.models import Source
from bot.core.policy import Timing, default_policy
from bot.gather.connectors import Connectors
from bot.gather.fanout import Gathering, gather
from bot.gather.plan import incident_window
from bot.gather.tools import ToolRunner
from bot.intake.catalog import Catalog
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.scenarios import with_faults


def _runner(**source_timeouts: float) -> ToolRunner:
    return ToolRunner(policy=default_policy(), audit=MemoryAudit(), brief_key="pd:Q1", timeout_s=15,
                      source_timeouts=source_timeouts)


async def test_a_snapshot_at_the_deadline_holds_what_is_in_and_names_the_slow_source_pending(
        checkout: Scenario) -> None:
    slow = with_faults(checkout, latency_ms={"github": 1500})
    alert = checkout.alert.to_alert()
    service = Catalog(checkout.service_entries()).resolve(alert.service)
    window = incident_window(alert, checkout.now)
    with Sandbox(slow) as sb:
        connectors = Connectors.from_settings(sb.settings())
        try:
            gathering = Gathering(alert, service, window, _runner(), connectors)
            early = await gathering.wait(1.0)
            assert early.pending == [Source.GITHUB]
            assert Source.DATADOG in early.answered
            assert not early.done
            assert early.evidence, "what was in at the deadline"
            assert not any(item.source == Source.GITHUB for item in early.evidence)
            complete = await gathering.wait()
            assert complete.done
            assert any(item.source == Source.GITHUB for item in complete.evidence)
            assert complete.gaps == []
            # The same evidence, in the same order, as waiting for everything.
            evidence, gaps = await gather(alert, service, window, _runner(), connectors)
            assert [item.id for item in complete.evidence] == [item.id for item in evidence]
            assert gaps == []
        finally:
            await connectors.aclose()


async def test_a_source_that_never_answers_is_a_gap_at_its_own_policy_timeout(checkout: Scenario) -> None:
    stuck = with_faults(checkout, errors={"github": "timeout"})
    alert = checkout.alert.to_alert()
    service = Catalog(checkout.service_entries()).resolve(alert.service)
    timeouts = {s: Timing(source_timeout_s={"github": 1.5}).timeout_for(s, 15.0) for s in ("github", "jira")}
    assert timeouts == {"github": 1.5, "jira": 15.0}
    with Sandbox(stuck) as sb:
        connectors = Connectors.from_settings(sb.settings())
        try:
            evidence, gaps = await gather(alert, service, incident_window(alert, checkout.now),
                                          _runner(**timeouts), connectors)
        finally:
            await connectors.aclose()
    assert [(gap.source, gap.reason) for gap in gaps] == [(Source.GITHUB, "no answer within 1.5s")]
    assert evidence
