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


async def test_an_idle_connection_outlives_a_slow_source_as_the_vendors_front_ends_keep_it(checkout: Scenario) -> None:
    # uvicorn's own 5 s keep-alive closed connections the client's pool still held (aiosonic
    # keeps them 60 s): a POST sent on one failed as a disconnect. The same connection must
    # still answer after 6 s of quiet.
    with Sandbox(checkout, systems=["datadog"]) as sb:
        token = sb.ctx.secrets["api_token"]
        headers = {"DD-API-KEY": token, "DD-APPLICATION-KEY": token}
        reader, writer = await asyncio.open_connection("127.0.0.1", int(sb.url("datadog").rsplit(":", 1)[1]))
        try:
            for attempt in range(2):
                lines = ["GET /api/v1/monitor/0 HTTP/1.1", "Host: datadog", *(f"{k}: {v}" for k, v in headers.items())]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                await writer.drain()
                status = await asyncio.wait_for(reader.readline(), 5)
                assert status.startswith(b"HTTP/1.1 "), f"attempt {attempt}: {status!r}"
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if attempt == 0:
                    await asyncio.sleep(6)  # past uvicorn's default keep-alive
        finally:
            writer.close()
