"""Shared HTTP discipline for connectors: a read-only allowlist at the wire, retries, JSON.

`Allowlist` is the rule (which ``(METHOD, path)`` pairs a connector may send), usable from
any client library. `ReadOnlyTransport` enforces it for httpx: a forbidden request raises
`WireRefused` before a byte leaves the process. `get_json` adds bounded retries on 429 and
5xx (honouring ``Retry-After``), and turns timeouts, refused connections and malformed JSON
into `SourceUnavailable` with a short reason a person can read.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.core.errors import SourceUnavailable, WireRefused

MAX_RETRY_AFTER_S = 10.0  # never sleep longer than this on one Retry-After


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


def retry_delay(attempt: int, retry_after: str | None) -> float:
    """Seconds to wait before retry `attempt` (1-based): Retry-After wins, else backoff."""
    if retry_after:
        try:
            return min(float(retry_after), MAX_RETRY_AFTER_S)
        except ValueError:
            pass  # an HTTP-date: fall back to backoff rather than parse clocks we don't trust
    return min(0.2 * 2 ** (attempt - 1), 2.0) + random.uniform(0, 0.05)  # noqa: S311 - jitter


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    source: str,
    tool: str,
    max_retries: int = 2,
    **kwargs: Any,
) -> httpx.Response:
    """Send with retries on 429/5xx and transport errors; raise SourceUnavailable at the end."""
    last = "no attempt made"
    retry_after: str | None = None
    for attempt in range(max_retries + 1):
        if attempt:
            await asyncio.sleep(retry_delay(attempt, retry_after))
        retry_after = None
        try:
            response = await client.request(method, url, **kwargs)
        except WireRefused:
            raise
        except httpx.TimeoutException:
            last = "timed out"
            continue
        except httpx.ConnectError:
            last = "connection refused"
            continue
        except httpx.TransportError as exc:
            last = f"transport error ({type(exc).__name__})"
            continue
        if response.status_code == 429 or response.status_code >= 500:
            last = f"HTTP {response.status_code}"
            retry_after = response.headers.get("retry-after")
            continue
        if response.status_code >= 400:
            raise SourceUnavailable(source, f"HTTP {response.status_code}", tool)
        return response
    raise SourceUnavailable(source, f"{last} after {max_retries + 1} attempts", tool)


def parse_json(response: httpx.Response, *, source: str, tool: str) -> Any:
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise SourceUnavailable(source, "malformed JSON in response", tool) from exc


async def get_json(client: httpx.AsyncClient, url: str, *, source: str, tool: str,
                   max_retries: int = 2, **kwargs: Any) -> Any:
    response = await send(client, "GET", url, source=source, tool=tool,
                          max_retries=max_retries, **kwargs)
    return parse_json(response, source=source, tool=tool)
