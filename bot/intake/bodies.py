"""Reading a request body with a ceiling, whatever the headers claim (Starlette requests).

A declared ``Content-Length`` is checked first, but a chunked request declares none: the body is
read chunk by chunk and abandoned as soon as it passes the limit, so no request can make a
replica hold an unbounded body in memory.
"""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(ValueError):
    pass


class BadContentLength(ValueError):
    pass


async def read_bounded(request: Request, limit: int) -> bytes:
    """The body, or `BodyTooLarge` / `BadContentLength`. The bytes are kept on the request
    (Starlette's own cache), so a later ``await request.body()`` (Bolt's adapter) reads them."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()) or len(declared) > 15:
            raise BadContentLength("Content-Length is not a number")
        if int(declared) > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette caches the body here: `body()` returns it from now on
    return body
