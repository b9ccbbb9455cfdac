"""The sandbox's own machinery (`sandbox.core`): what a test can see of a request still in flight."""

from __future__ import annotations

import asyncio

import httpx

from sandbox.people import wait_for
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.scenarios import with_faults


async def test_a_request_held_by_injected_latency_is_counted_on_arrival_and_recorded_once_answered(
        checkout: Scenario) -> None:
    with Sandbox(with_faults(checkout, latency_ms={"jira.create_issue": 1000}), systems=["jira"]) as sb:
        token = sb.ctx.secrets["api_token"]
        async with httpx.AsyncClient(base_url=sb.url("jira"), headers={"Authorization": f"Bearer {token}"}) as client:
            sent = asyncio.ensure_future(client.post("/rest/api/2/issue", json={"fields": {}}))
            await wait_for(lambda: sb.recorder.arrivals("jira", "jira.create_issue") or None, "the arrival")
            assert not sb.recorder.requests("jira"), "still being answered"
            assert (await sent).status_code == 400
        assert [r.tool for r in sb.recorder.requests("jira")] == ["jira.create_issue"]
        assert sb.recorder.arrivals("jira", "jira.search") == 0
        sb.recorder.clear()
        assert sb.recorder.arrivals("jira", "jira.create_issue") == 0
