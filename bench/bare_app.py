"""The ceiling of the stack: the least a Starlette + Jinja page with a signed-cookie session can cost.

`python bench/bare_app.py PORT WORKERS` serves it as `python -m web serve` serves the app (uvicorn,
httptools with TCP_NODELAY, uvloop, the same worker count), so the ceiling is as fast as the stack allows
and the app's figures divided by these say what the app's own code costs.
"""

from __future__ import annotations

import os
import sys

from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body>
  <h1>{{ title }}</h1>
  <p>Signed in as {{ user }}.</p>
</body>
</html>
"""
TEMPLATES = Environment(loader=DictLoader({"page.html": PAGE}), autoescape=True, auto_reload=False)


async def page(request: Request) -> Response:
    """Reads the signed session (one HMAC check) and renders a tiny template: the per-request floor."""
    user = request.session.get("user", "nobody")
    return HTMLResponse(TEMPLATES.get_template("page.html").render(title="Settings", user=user))


async def login(request: Request) -> Response:
    """Sets the session once, so the load tool holds a real signed cookie."""
    request.session["user"] = "member@bench.example"
    return PlainTextResponse("ok")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app() -> Starlette:
    secret = os.environ.get("SECRET_KEY", "bench-bare-secret")
    return Starlette(
        routes=[Route("/", page), Route("/login", login), Route("/healthz", healthz)],
        middleware=[Middleware(SessionMiddleware, secret_key=secret)],
    )


if __name__ == "__main__":
    import uvicorn

    from web.serving import NoDelayHttpToolsProtocol

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(
        "bare_app:create_app",
        factory=True,
        port=port,
        workers=workers,
        http=NoDelayHttpToolsProtocol,
        loop="uvloop",
        log_level="warning",
    )
