"""The listening sockets handed to uvicorn (bot's test/demo server and every sandbox system)."""

from __future__ import annotations

import asyncio
import socket

import httpx

from bot.app.bootstrap import serving
from bot.app.net import tcp_listener


def _nodelay(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_accepted_connections_have_nagle_off() -> None:
    """With Nagle on, each response after the first on a kept-alive connection waited ~40 ms
    for the client's delayed ACK: it made every sandbox call (and the ack benchmark) slow."""
    listener = tcp_listener()
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert listener.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only on such sockets
        assert _nodelay(listener)
        assert _nodelay(accepted)
    finally:
        for sock in (client, accepted, listener):
            sock.close()


def test_serving_answers_many_requests_on_one_connection() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run() -> list[str]:
        async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
            return [(await client.post("/", content=b"x" * 2_000)).text for _ in range(5)]

    assert asyncio.run(run()) == ["ok"] * 5
