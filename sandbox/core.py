"""The sandbox's machinery: a route table per fake system, recording, fault injection.

Every fake system (Datadog, GitHub, Slack, ...) is a `SystemApp`: a table of
``(method, path) -> handler`` entries, each named after the bot tool it serves
(``datadog.search_logs``). One ASGI callable per system applies, in this order: auth check,
injected latency, injected error, the handler, then records the exchange with the
provenance the handler reported (which world items produced the answer); a request held by
a ``timeout`` fault is recorded as it arrives instead. Handlers only render the scenario into
the system's real wire format.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from sandbox.scenario import DEFAULT_RETRY_AFTER_S, Scenario

# A sandbox "timeout" holds the request this long: far past any client timeout.
TIMEOUT_FAULT_SECONDS = 30.0
RETRY_AFTER_SECONDS = DEFAULT_RETRY_AFTER_S  # a 429 fault's Retry-After unless the world's faults set one


@dataclass
class SandboxRequest:
    method: str
    path: str
    path_params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def q(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Reply:
    body: Any = None  # dict/list -> JSON; str -> text; bytes -> raw
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    provenance: list[str] = field(default_factory=list)  # world item ids behind the answer


@dataclass(frozen=True)
class RecordedRequest:
    system: str
    tool: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str
    status: int
    provenance: tuple[str, ...]
    fault: str | None
    at: float

    def json(self) -> Any:
        return json.loads(self.body or "null")


_REDACTED_HEADERS = {"authorization", "dd-api-key", "dd-application-key", "cookie"}


class Recorder:
    """Everything the sandbox received, in order; thread-safe (servers run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[RecordedRequest] = []
        self._arrived: Counter[tuple[str, str]] = Counter()

    def add(self, item: RecordedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def arrive(self, system: str, tool: str) -> None:
        with self._lock:
            self._arrived[(system, tool)] += 1

    def arrivals(self, system: str, tool: str) -> int:
        """Requests for `tool` that reached `system`, counted as each arrives (before any injected
        latency or fault), where `requests` lists each once answered: a test can act while one is
        still being answered (kill the client mid-create, say)."""
        with self._lock:
            return self._arrived[(system, tool)]

    def requests(
        self,
        system: str | None = None,
        *,
        tool: str | None = None,
        method: str | None = None,
        path_prefix: str | None = None,
    ) -> list[RecordedRequest]:
        with self._lock:
            items = list(self._items)
        return [
            r for r in items
            if (system is None or r.system == system)
            and (tool is None or r.tool == tool)
            and (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        ]

    def writes(self, system: str | None = None) -> list[RecordedRequest]:
        """Requests that a real system would treat as a change (anything but GET/HEAD),
        minus reads that happen to be POSTs (each SystemApp marks those)."""
        return [r for r in self.requests(system) if r.method not in {"GET", "HEAD"}
                and not (r.tool or "").endswith(_READ_SUFFIXES)]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._arrived.clear()


# Tools whose wire method is POST although they only read (Datadog logs search, ...).
_READ_SUFFIXES = (".search_logs", ".query_timeseries", ".auth_test", ".oauth", "_model_call")

Handler = Callable[[SandboxRequest], Awaitable[Reply]]
AuthCheck = Callable[[SandboxRequest], Reply | None]


@dataclass
class _Route:
    method: str
    pattern: Any
    tool: str
    handler: Handler


@dataclass
class SandboxContext:
    """What every fake system gets: the scenario world and the shared recorder."""

    scenario: Scenario
    recorder: Recorder
    # Filled in when servers are bound: system name -> base URL (systems link to each other).
    urls: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # Set when the sandbox stops: requests held by the ``timeout`` fault are let go then, so
    # the servers shut down cleanly instead of having them cancelled (and logged as errors).
    closing: threading.Event = field(default_factory=threading.Event)

    @property
    def now(self) -> datetime:
        return self.scenario.now


class SystemApp:
    """One fake outside system: routes named after tools, plus fault handling and recording."""

    def __init__(self, name: str, ctx: SandboxContext, auth: AuthCheck | None = None) -> None:
        self.name = name
        self.ctx = ctx
        self._routes: list[_Route] = []
        self._auth = auth

    def route(self, method: str, path: str, tool: str) -> Callable[[Handler], Handler]:
        """Register a handler for ``METHOD path`` (Starlette path syntax, ``{id}``, ``{p:path}``)."""
        regex, _fmt, convertors = compile_path(path)

        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(method.upper(), (regex, convertors), tool, handler))
            return handler

        return register

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in self._routes:
            regex, _convertors = route.pattern
            found = regex.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        sreq = SandboxRequest(
            method=request.method,
            path=request.url.path,
            path_params={},
            query=parse_qs(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        reply, tool, fault = await self._dispatch(sreq)
        if fault != "timeout":  # a held request was recorded when it arrived (see `hold`)
            self._record(sreq, reply, tool, fault)
        await _to_response(reply)(scope, receive, send)

    async def _dispatch(self, sreq: SandboxRequest) -> tuple[Reply, str | None, str | None]:
        matched = self._match(sreq.method, sreq.path)
        if matched is None:
            return Reply({"error": f"sandbox {self.name}: no route for {sreq.method} {sreq.path}"},
                         status=404), None, None
        route, params = matched
        sreq.path_params = params
        if self._auth is not None and (denied := self._auth(sreq)) is not None:
            return denied, route.tool, None
        self.ctx.recorder.arrive(self.name, route.tool)
        faults = self.ctx.scenario.world.faults
        if latency := faults.latency_for(route.tool):
            await asyncio.sleep(latency / 1000)
        fault = faults.error_for(route.tool)
        if fault == "timeout":
            return await self.hold(sreq, route.tool, Reply({"errors": ["Gateway Timeout (sandbox fault injection)"]},
                                                           status=504)), route.tool, fault
        if fault is not None and fault != "refused":
            return _fault_reply(fault, faults.retry_after_s), route.tool, fault
        try:
            return await route.handler(sreq), route.tool, None
        except Exception as exc:  # a sandbox bug must look like a 500, not a hang
            return Reply({"error": f"sandbox {self.name} failed: {exc!r}"}, status=500), route.tool, None

    async def hold(self, sreq: SandboxRequest, tool: str | None, reply: Reply) -> Reply:
        """The ``timeout`` fault: record the request now, as it arrives, then hold it far past any
        client timeout. Recorded at the end, like other requests, it would never be seen (the client
        gives up first), and tests could not count the attempts that timed out."""
        self._record(sreq, reply, tool, "timeout")
        deadline = time.monotonic() + TIMEOUT_FAULT_SECONDS
        # Polled: `closing` is set from another thread, which an asyncio.Event does not allow.
        while time.monotonic() < deadline and not self.ctx.closing.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return reply

    def _record(self, sreq: SandboxRequest, reply: Reply, tool: str | None, fault: str | None) -> None:
        headers = {k: ("<redacted>" if k in _REDACTED_HEADERS else v) for k, v in sreq.headers.items()}
        self.ctx.recorder.add(RecordedRequest(
            system=self.name, tool=tool, method=sreq.method, path=sreq.path, query=sreq.query,
            headers=headers, body=sreq.body.decode("utf-8", "replace"), status=reply.status,
            provenance=tuple(reply.provenance), fault=fault, at=time.time(),
        ))


def _fault_reply(fault: str, retry_after_s: int) -> Reply:
    if fault == "http_500":
        return Reply({"errors": ["Internal Server Error (sandbox fault injection)"]}, status=500)
    if fault in ("http_429", "http_429_persistent"):  # here every call is limited while the fault lasts
        return Reply({"errors": ["Rate limit exceeded (sandbox fault injection)"]}, status=429,
                     headers={"Retry-After": str(retry_after_s)})
    if fault == "malformed":
        return Reply('{"data": [{"truncated', content_type="application/json")
    raise ValueError(f"unknown fault {fault!r}")


def _to_response(reply: Reply) -> Response:
    if isinstance(reply.body, bytes):
        content: bytes = reply.body
        media = reply.content_type or "application/octet-stream"
    elif isinstance(reply.body, str):
        content = reply.body.encode()
        media = reply.content_type or "text/plain; charset=utf-8"
    elif reply.body is None:
        content, media = b"", reply.content_type or "text/plain"
    else:
        content = json.dumps(reply.body, default=str).encode()
        media = reply.content_type or "application/json"
    return Response(content, status_code=reply.status, headers=reply.headers, media_type=media)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def iso(dt: datetime) -> str:
    """ISO 8601 UTC with a Z, as most of these APIs write it (scenario times are aware)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ids(items: Iterable[Any]) -> list[str]:
    """World item ids for provenance (items without an id are recorded by position)."""
    return [getattr(item, "id", None) or "" for item in items if getattr(item, "id", None)]
