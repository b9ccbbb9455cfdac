"""Every drafted brief leaves a citation-check row in the audit trail, whichever drafter wrote it:
"ok" when every claim rested on gathered evidence, "fixed" (with what was removed) when not."""

from __future__ import annotations

from bot.core.models import Alert, Brief, Evidence, ServiceEntry, SourceGap, TimeWindow
from bot.draft.drafter import OfflineDrafter
from sandbox.harness import run_scenario
from sandbox.scenario import Scenario

INVENTED = "deploy-ffffff"


class InventingDrafter:
    """The offline drafter's brief with one invented citation and one uncited action added:
    what a careless model (or a drafter bug) would hand the workflow."""

    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence],
                    gaps: list[SourceGap], *, key: str | None = None) -> Brief:
        brief = await OfflineDrafter().draft(alert, service, window, evidence, gaps, key=key)
        headline = brief.headline.model_copy(update={"citations": [INVENTED, *brief.headline.citations]})
        uncited = brief.next_actions[0].model_copy(update={"text": "Restart the database", "citations": []})
        return brief.model_copy(update={"headline": headline, "next_actions": [*brief.next_actions, uncited]})


async def test_a_clean_brief_records_an_ok_check(checkout: Scenario) -> None:
    run = await run_scenario(checkout)

    assert run.audit is not None
    [check] = run.audit.brief_checks
    assert (check.check, check.drafter, check.model, check.outcome) == ("citations", "offline", None, "ok")
    assert check.coverage == 1.0
    assert check.problems == []
    assert check.brief_key == run.key == f"pd:{checkout.alert.incident_id}"
    assert check.actor == checkout.alert.to_alert().requested_by


async def test_unsupported_claims_are_recorded_as_fixed_with_what_was_removed(checkout: Scenario) -> None:
    run = await run_scenario(checkout, drafter=InventingDrafter())

    assert run.audit is not None
    [check] = run.audit.brief_checks
    assert check.outcome == "fixed"
    assert check.coverage < 1.0
    assert f"headline: cites unknown evidence {INVENTED}" in check.problems
    assert any(problem.endswith("dropped, no valid citation") for problem in check.problems)
    brief = run.result.brief
    assert INVENTED not in brief.headline.citations
    assert all(action.text != "Restart the database" for action in brief.next_actions)
