"""Fake Slack Socket Mode: the WebSocket Slack sends envelopes on, on Slack's wire format.

The app asks ``apps.connections.open`` (the fake Web API, `sandbox.slack`, with the app-level
token) for a URL; each URL carries a one-time ticket, and this server accepts a WebSocket only
for a ticket it issued, as Slack's ``wss://wss-primary.slack.com/link/?ticket=…`` does. On
connect it sends ``hello``; tests then push any text they like (well-formed envelopes or
hostile ones) with `send`, and read what the app sent back (its acknowledgements) in `replies`.

Served by aiohttp (the sandbox's HTTP servers are uvicorn without a WebSocket implementation),
on its own thread and event loop like every sandbox server, so the app under test connects over
a real socket with the real ``slack_sdk`` client.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from sandbox.core import SandboxContext
from sandbox.slack import APP_ID

# Bigger than any envelope, so a test can send one past the app's own bound (aiohttp's default is 4 MiB).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class SocketModeServer:
    """One app's Socket Mode connection (the latest one wins, as a reconnect replaces it)."""

    def __init__(self, ctx: SandboxContext, sock: socket.socket) -> None:
        self.ctx = ctx
        self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}/link/"
        self.replies: list[Any] = []  # what the app sent: parsed JSON, else the raw text
        self.connections = 0
        self._sock = sock
        self._tickets: set[str] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._current: web.WebSocketResponse | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True,
                                        name="sandbox-slack-socket")

    def issue_url(self) -> str:
        """A fresh connection URL (what ``apps.connections.open`` answers); its ticket works once."""
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return f"{self.url}?ticket={ticket}&app_id={APP_ID}"

    def start(self) -> SocketModeServer:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("sandbox Socket Mode server did not start in 10s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)

    async def send(self, message: str | dict[str, Any]) -> None:
        """Send one text message to the connected app (from any thread's event loop)."""
        text = message if isinstance(message, str) else json.dumps(message)
        if self._loop is None or self._current is None:
            raise RuntimeError("no app is connected")
        current = self._current
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(current.send_str(text), self._loop))

    def acknowledged(self, envelope_id: str) -> bool:
        return any(isinstance(r, dict) and r.get("envelope_id") == envelope_id for r in self.replies)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/link/", self._link)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, self._sock).start()
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            if self._current is not None:
                await self._current.close()
            await runner.cleanup()

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        self._current = ws
        self.connections += 1
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": 1,
            "debug_info": {"host": "applink-sandbox", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID}}))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                try:
                    self.replies.append(json.loads(message.data))
                except ValueError:
                    self.replies.append(message.data)
        return ws


def envelope(kind: str, payload: dict[str, Any], *, envelope_id: str | None = None, retry_attempt: int = 0,
             retry_reason: str = "") -> dict[str, Any]:
    """A request envelope as Slack sends it: ``events_api`` (an Events API body as the payload),
    ``interactive`` (a block action or view submission) or ``slash_commands`` (the command's fields)."""
    message: dict[str, Any] = {"envelope_id": envelope_id or str(uuid.uuid4()), "payload": payload, "type": kind,
                               "accepts_response_payload": kind != "events_api"}
    if kind == "events_api":
        message.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
    return message
