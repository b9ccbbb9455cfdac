"""The web app as `serve` builds it, driven in-process (ASGI, no sockets) from synchronous code.

Property-based tests (hypothesis) run thousands of requests; over loopback sockets that is too
slow for `make test`. `InProcessBot` owns an event loop (`asyncio.Runner`), a sandboxed runtime
(the sandbox's fakes still answer over real HTTP: Slack, Jira...) and an httpx client on the
app's ASGI interface; background work the requests start runs on the same loop, between and
after requests (`settle`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bot.app.web import build_web_app
from bot.runtime import Runtime
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.slack_app import sandboxed_runtime


class InProcessBot:
    def __init__(self, scenario: Scenario, db_path: Path) -> None:
        self.accepted = 0  # requests answered 2xx, for tests that count what they may cause
        self._runner = asyncio.Runner()
        self._stack = contextlib.AsyncExitStack()
        self.sb, self.rt = self._runner.run(self._start(scenario, db_path))

    async def _start(self, scenario: Scenario, db_path: Path) -> tuple[Sandbox, Runtime]:
        sb, rt = await self._stack.enter_async_context(sandboxed_runtime(scenario, db_path))
        transport = httpx.ASGITransport(app=build_web_app(rt))
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://bot.test"))
        return sb, rt

    @property
    def slack_secret(self) -> str:
        return str(self.sb.ctx.secrets["slack_signing_secret"])

    def request(self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
                params: dict[str, str] | None = None, chunked: bool = False) -> httpx.Response:
        """One request; ``chunked`` sends the body in pieces with no Content-Length."""
        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 65536):
                yield body[start:start + 65536]

        content: bytes | AsyncIterator[bytes] = pieces() if chunked else body
        return self._runner.run(self.client.request(method, path, content=content, headers=headers or {},
                                                    params=params))

    def call(self, work: Any) -> Any:
        """Run a coroutine on the bot's loop (a store query, say) and return its result."""
        return self._runner.run(work)

    def settle(self) -> None:
        """Let background work started by earlier requests finish."""
        self._runner.run(self.rt.idle())

    def writes(self, system: str) -> list[Any]:
        return list(self.sb.ctx.recorder.writes(system))

    def close(self) -> None:
        try:
            self._runner.run(self._stack.aclose())
        finally:
            self._runner.close()
