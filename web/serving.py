"""Serving details uvicorn gets wrong for us.

With `--workers N` uvicorn 0.54 binds the listening socket itself with `proto=0`; asyncio only sets
TCP_NODELAY on accepted connections when `proto == IPPROTO_TCP`, so Nagle's algorithm holds each response
body until the client's delayed ACK: ~40 ms on every keep-alive request (Kludex/uvicorn#3149). The
benchmark measured 354 → ~1,300 Settings pages/s with this protocol class.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
