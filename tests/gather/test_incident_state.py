"""A late trigger is briefed only while PagerDuty says the incident is open: the check is one
audited `pagerduty.get_incident` read through the choke point, answered here by PagerDuty's own
documented incident (replayed over HTTP to the real connector)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from bot.core.audit import MemoryAudit
from bot.core.config import PagerDutySettings
from bot.core.policy import default_policy
from bot.gather.connectors import Connectors
from bot.gather.incident_state import late_trigger_check
from bot.gather.tools import ToolRunner
from connectors.pagerduty import PagerDutyConnector
from tests.helpers.replay import Canned, fixture, replaying

OCCURRED = datetime(2015, 10, 6, 23, 30, tzinfo=UTC)


def documented_incident(status: str | None = None) -> dict[str, object]:
    body = copy.deepcopy(fixture("pagerduty", "rest", "get_incident.json"))
    if status is not None:
        body["incident"]["status"] = status
    return body


async def check(body: dict[str, object], status: int = 200) -> tuple[bool, str, MemoryAudit, list[str]]:
    audit = MemoryAudit()
    runner = ToolRunner(policy=default_policy(), audit=audit, brief_key="pd:PT4KHLK", actor="pagerduty-webhook")
    async with replaying([Canned("GET", "/incidents/PT4KHLK", body, status=status)]) as server:
        connector = PagerDutyConnector(PagerDutySettings(base_url=server.base_url, token="t", max_retries=0))
        try:
            found = await late_trigger_check(runner, Connectors(pagerduty=connector), "PT4KHLK", OCCURRED)
        finally:
            await connector.aclose()
    return found.brief, found.reason, audit, server.paths()


@pytest.mark.parametrize(("status", "brief"), [("acknowledged", True), ("triggered", True), ("resolved", False)])
async def test_a_late_trigger_is_briefed_only_while_the_incident_is_open(status: str, brief: bool) -> None:
    decided, reason, audit, paths = await check(documented_incident(status))
    assert decided is brief
    assert status in reason
    assert paths == ["/incidents/PT4KHLK"]  # the incident only: its alerts are not needed to decide
    [call] = audit.tool_calls
    assert (call.tool, call.outcome, call.brief_key, call.actor) == (
        "pagerduty.get_incident", "ok", "pd:PT4KHLK", "pagerduty-webhook")
    assert call.args["purpose"] == "late trigger: is the incident still open?"


async def test_when_pagerduty_cannot_say_the_brief_is_drafted_anyway() -> None:
    decided, reason, audit, _ = await check({"error": {"message": "Not Found", "code": 2100}}, status=404)
    assert decided is True
    assert reason == "PagerDuty could not say (HTTP 404): briefing anyway"
    assert audit.tool_calls[0].outcome == "gap"


async def test_without_pagerduty_configured_the_brief_is_drafted() -> None:
    runner = ToolRunner(policy=default_policy(), audit=MemoryAudit())
    found = await late_trigger_check(runner, Connectors(), "PT4KHLK", OCCURRED)
    assert found.brief is True
    assert "not configured" in found.reason
