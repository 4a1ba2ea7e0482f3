"""`python -m web serve …` (or the `uvicorn` CLI) with one uvicorn bug patched first, so the benchmark
measures the app rather than a TCP stall.

uvicorn 0.54 binds the listening socket itself for `--workers N` (N > 1) and creates it with `proto=0`;
accepted connections inherit that, and asyncio only sets TCP_NODELAY when `proto == IPPROTO_TCP`. Nagle's
algorithm then holds the body (written after the headers) until the client's delayed ACK: ~40 ms on every
keep-alive request after the first (Kludex/uvicorn#3149, open). `--workers 1` is not affected. The bench
measures the server as shipped too and reports the difference.

Usage: serve.py web serve --workers 2 --quiet | serve.py uvicorn <uvicorn CLI arguments>
"""

from __future__ import annotations

import socket
import sys

import uvicorn.config

_bind_socket = uvicorn.config.Config.bind_socket


def _bind_socket_tcp(self: uvicorn.config.Config) -> socket.socket:
    """The socket uvicorn binds, re-wrapped with proto=IPPROTO_TCP so workers' connections get TCP_NODELAY."""
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        fixed = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, sock.detach())
        fixed.set_inheritable(True)
        return fixed
    return sock


def main() -> None:
    uvicorn.config.Config.bind_socket = _bind_socket_tcp  # type: ignore[method-assign]
    which, args = sys.argv[1], sys.argv[2:]
    if which == "web":
        from web.cli import main as web_main

        sys.exit(web_main(args))
    from uvicorn.main import main as uvicorn_main

    sys.argv = ["uvicorn", *args]
    uvicorn_main()


if __name__ == "__main__":
    main()
