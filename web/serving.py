"""Serving details uvicorn gets wrong for us.

With `--workers N` uvicorn 0.54 binds the listening socket itself with `proto=0`; asyncio only sets
TCP_NODELAY on accepted connections when `proto == IPPROTO_TCP`, so Nagle's algorithm holds each response
body until the client's delayed ACK: ~40 ms on every keep-alive request (Kludex/uvicorn#3149). Setting it
on every accepted connection makes every worker count behave like `--workers 1`.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (what `http="httptools"` selects) with TCP_NODELAY on each connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]
