"""A replay server for the vendors' recorded answers: canned responses over real HTTP on loopback.

Conformance tests point a connector (its real client library) at it, so what a vendor really
sent is parsed exactly as in production: HTTP, JSON, headers and paging included. Every request
is recorded, so a test can check what the connector asked for (the cursor it followed, the
query it ran). A request no canned answer matches gets a 404 naming it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bot.app.bootstrap import serving

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(*parts: str) -> Any:
    """A vendored JSON fixture, parsed (``fixture("github", "deployments.json")``)."""
    return json.loads(FIXTURES.joinpath(*parts).read_text(encoding="utf-8"))


@dataclass
class Canned:
    """One recorded answer: served for `method` on a path matching `path` (a regex, matched
    whole) whose query holds every pair in `query` and whose body contains `body_has`."""

    method: str
    path: str
    body: Any
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body_has: str | None = None
    # Render the body per request (e.g. to put the server's own URL in a link).
    render: Callable[[str, Any], Any] | None = None

    def matches(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bool:
        return (method == self.method.upper() and re.fullmatch(self.path, path) is not None
                and all(value in query.get(name, []) for name, value in self.query.items())
                and (self.body_has is None or self.body_has.encode() in body))


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class ReplayApp:
    """The ASGI app: the first canned answer that matches, in order."""

    def __init__(self, answers: list[Canned]) -> None:
        self.answers = answers
        self.received: list[Received] = []
        self.base_url = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        query = parse_qs(request.url.query, keep_blank_values=True)
        body = await request.body()
        self.received.append(Received(request.method, request.url.path, query, body))
        answer = next((a for a in self.answers if a.matches(request.method, request.url.path, query, body)), None)
        if answer is None:
            response = Response(json.dumps({"error": f"replay: no recorded answer for {request.method} "
                                                     f"{request.url.path}?{request.url.query}"}),
                                status_code=404, media_type="application/json")
        else:
            body = answer.render(self.base_url, answer.body) if answer.render else answer.body
            response = Response(json.dumps(body), status_code=answer.status, headers=answer.headers,
                                media_type="application/json")
        await response(scope, receive, send)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]


@contextlib.asynccontextmanager
async def replaying(answers: list[Canned]) -> AsyncIterator[ReplayApp]:
    """Serve `answers` on a loopback port for the duration; the app's ``base_url`` is set."""
    app = ReplayApp(answers)
    async with serving(app) as url:
        app.base_url = url
        yield app
