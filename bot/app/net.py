"""A listening TCP socket for a uvicorn server that is handed its socket (port 0 in tests,
the sandbox and the demo).

The protocol must be named (``IPPROTO_TCP``), not left as 0: asyncio turns Nagle off
(``TCP_NODELAY``) only on sockets whose ``proto`` says TCP, and accepted sockets inherit
the listener's. With Nagle on, every response after the first on a kept-alive connection
waits for the client's delayed ACK of its headers: about 40 ms per request on Linux.
"""

from __future__ import annotations

import socket


def tcp_listener(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bound, not yet listening (uvicorn listens; a socket nobody listens on refuses connects)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock
