"""Read-only at the wire for `requests`-based clients (atlassian-python-api), plus retries.

`GuardedAdapter` is mounted on the client's `requests.Session` for ``http://`` and ``https://``.
Every request passes through its `send`, which:

1. refuses, before a byte leaves the process, anything that is not for the configured host or
   not in the connector's `Allowlist` (and any path with dot segments or encoded slashes, which
   a server might resolve to somewhere the allowlist did not mean): `WireRefused`;
2. applies our per-call timeout (the library truncates its own timeout to whole seconds);
3. retries 429 and 5xx, and connection failures, under the connectors' one `RetryPolicy`
   (bounded, honouring ``Retry-After``). A non-idempotent request (POST) is retried only when
   the server cannot have acted on it (429, or the connection was never made), so a create is
   never doubled;
4. turns what is left into `SourceUnavailable` with a short reason a person can read.

The library's own 429 handling never sees a 429 (we answer first); build the client with
``retry_with_header=False`` anyway so there is one retry policy, ours. Blocking calls go through
`call_blocking`, which runs them in a worker thread and maps library and `requests` errors to
`SourceUnavailable`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from bot.core.errors import SourceUnavailable, WireRefused
from bot.core.redaction import clip
from connectors._http import Allowlist
from connectors._retry import Failed, RetryPolicy

T = TypeVar("T")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_SUSPICIOUS_PATH = re.compile(r"(^|/)\.\.?(/|$)|%2f|%5c|\\", re.IGNORECASE)


class GuardedAdapter(HTTPAdapter):
    """A transport adapter that enforces the allowlist, the timeout and the retry policy
    (`sleep` is the policy's, injectable so a test need not wait)."""

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        base_url: str,
        timeout_s: float,
        max_retries: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(max_retries=0)  # urllib3 must not retry behind our back
        self.allowlist = allowlist
        base = urlsplit(base_url)
        self.origin = (base.scheme, base.netloc)
        self.timeout_s = timeout_s
        self.retry = RetryPolicy(max_retries, sleep=sleep)

    def check(self, method: str, url: str) -> None:
        """Raise `WireRefused` unless ``method url`` is one this connector may send."""
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self.origin:
            raise WireRefused(self.allowlist.source, method.upper(), url)
        if _SUSPICIOUS_PATH.search(parts.path) or _SUSPICIOUS_PATH.search(unquote(parts.path)):
            raise WireRefused(self.allowlist.source, method.upper(), parts.path)
        self.allowlist.check(method, parts.path)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        method = (request.method or "GET").upper()
        self.check(method, request.url or "")
        # Once the server may have acted on a non-idempotent request, another try could do it twice.
        unsafe = None if method in IDEMPOTENT else f"a {method} is not retried when the server may have acted on it"
        send_once = super().send

        def attempt() -> requests.Response:
            try:
                response = send_once(request, stream=stream, timeout=self.timeout_s, verify=verify, cert=cert,
                                     proxies=proxies)
            except requests.exceptions.ConnectTimeout as exc:
                raise Failed("timed out connecting") from exc  # never connected: always safe to repeat
            except requests.exceptions.Timeout as exc:
                raise Failed("timed out", unsafe=unsafe) from exc
            except requests.exceptions.SSLError as exc:
                raise SourceUnavailable(self.allowlist.source, "TLS handshake failed") from exc
            except requests.exceptions.ConnectionError as exc:
                if _never_connected(exc):
                    raise Failed("connection refused") from exc
                raise Failed("connection lost", unsafe=unsafe) from exc
            if response.status_code == 429 or response.status_code >= 500:
                response.close()
                # A 429 was refused before any work was done; a 5xx may have come after it.
                raise Failed(f"HTTP {response.status_code}", retry_after=response.headers.get("Retry-After"),
                             unsafe=None if response.status_code == 429 else unsafe)
            return response

        return self.retry.call(attempt, source=self.allowlist.source)


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def guard_session(
    session: requests.Session,
    allowlist: Allowlist,
    *,
    base_url: str,
    timeout_s: float,
    max_retries: int,
) -> GuardedAdapter:
    """Mount the guard on `session` for every scheme it could use; returns the adapter."""
    adapter = GuardedAdapter(allowlist, base_url=base_url, timeout_s=timeout_s, max_retries=max_retries)
    for prefix in list(session.adapters):
        session.adapters.pop(prefix)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return adapter


async def call_blocking(source: str, tool: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking client call in a worker thread; every failure becomes `SourceUnavailable`."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except WireRefused:
        raise
    except SourceUnavailable as exc:
        raise SourceUnavailable(source, exc.reason, tool) from exc
    except requests.HTTPError as exc:
        raise SourceUnavailable(source, http_reason(exc), tool) from exc
    except requests.RequestException as exc:
        raise SourceUnavailable(source, f"transport error ({type(exc).__name__})", tool) from exc
    except _library_errors() as exc:
        cause = getattr(exc, "reason", None)
        if isinstance(cause, requests.HTTPError):
            raise SourceUnavailable(source, http_reason(cause), tool) from exc
        raise SourceUnavailable(source, f"request rejected: {_short(str(exc))}", tool) from exc


def http_reason(exc: requests.HTTPError) -> str:
    """``HTTP 400: <the server's own message>``, short and on one line."""
    status = exc.response.status_code if exc.response is not None else None
    detail = _short(str(exc))
    prefix = f"HTTP {status}" if status is not None else "HTTP error"
    if not detail or detail.startswith(f"{status} "):
        return prefix
    return f"{prefix}: {detail}"


def _short(text: str, limit: int = 200) -> str:
    return clip(text, limit)  # masked before it is cut: an error may quote a token


def _library_errors() -> tuple[type[BaseException], ...]:
    from atlassian.errors import ApiError

    return (ApiError,)
