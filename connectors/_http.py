"""Shared HTTP discipline for connectors: a read-only allowlist at the wire, retries, JSON.

`Allowlist` is the rule (which ``(METHOD, path)`` pairs a connector may send), usable from
any client library. `ReadOnlyTransport` enforces it for httpx: a forbidden request raises
`WireRefused` before a byte leaves the process. `send` and `get_json` run an httpx request
under the connectors' one `RetryPolicy` (429, 5xx, timeouts and transport errors are retried),
and turn what is left, and malformed JSON, into `SourceUnavailable` with a short reason a
person can read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.core.errors import SourceUnavailable, WireRefused
from connectors._retry import Failed, RetryPolicy


class Allowlist:
    """``(METHOD, path pattern)`` pairs; ``{name}`` matches one path segment, ``{name:path}``
    matches the rest. Paths are relative to the connector's base URL path."""

    def __init__(self, source: str, rules: Iterable[tuple[str, str]], base_path: str = "") -> None:
        self.source = source
        self.base_path = base_path.rstrip("/")
        self.rules = [(m.upper(), _compile(p)) for m, p in rules]
        self.patterns = [(m.upper(), p) for m, p in rules]

    def allows(self, method: str, path: str) -> bool:
        if self.base_path:
            if not path.startswith(self.base_path + "/"):
                return False
            path = path[len(self.base_path):]
        return any(m == method.upper() and rx.fullmatch(path) for m, rx in self.rules)

    def check(self, method: str, path: str) -> None:
        if not self.allows(method, path):
            raise WireRefused(self.source, method.upper(), path)


def _compile(pattern: str) -> re.Pattern[str]:
    out = ""
    for part in re.split(r"(\{[^}]+\})", pattern):
        if part.startswith("{") and part.endswith("}"):
            out += ".+" if part.endswith(":path}") else "[^/]+"
        else:
            out += re.escape(part)
    return re.compile(out)


class ReadOnlyTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and refuses anything outside the allowlist, before sending."""

    def __init__(self, allowlist: Allowlist, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.allowlist = allowlist
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.allowlist.check(request.method, request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def base_path(base_url: str) -> str:
    return urlsplit(base_url).path.rstrip("/")


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    source: str,
    tool: str,
    retry: RetryPolicy,
    **kwargs: Any,
) -> httpx.Response:
    """Send under `retry`; a 4xx other than 429 is final and raised at once."""

    async def attempt() -> httpx.Response:
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise Failed("timed out") from exc
        except httpx.ConnectError as exc:
            raise Failed("connection refused") from exc
        except httpx.TransportError as exc:
            raise Failed(f"transport error ({type(exc).__name__})") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise Failed(f"HTTP {response.status_code}", retry_after=response.headers.get("retry-after"))
        if response.status_code >= 400:
            raise SourceUnavailable(source, f"HTTP {response.status_code}", tool)
        return response

    return await retry.acall(attempt, source=source, tool=tool)


def parse_json(response: httpx.Response, *, source: str, tool: str) -> Any:
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise SourceUnavailable(source, "malformed JSON in response", tool) from exc


async def get_json(client: httpx.AsyncClient, url: str, *, source: str, tool: str, retry: RetryPolicy,
                   **kwargs: Any) -> Any:
    response = await send(client, "GET", url, source=source, tool=tool, retry=retry, **kwargs)
    return parse_json(response, source=source, tool=tool)
