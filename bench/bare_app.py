"""The ceiling of the stack: the least a Starlette + Jinja page, and a real sign-in, can cost on it.

`GET /` reads a signed-cookie session and renders a tiny template: the per-request floor that wrk drives
beside the app's pages. `/login` and `/login/verify` are a minimal real password + TOTP sign-in written
directly on the bare stack (bench/bare_signin.py, its tables in bench/bare_db.py), driven by the same
client code as the app's sign-in (bench/signin.py).

`python bench/bare_app.py PORT WORKERS` serves it as `python -m web serve` serves the app (uvicorn,
httptools with TCP_NODELAY, uvloop, proxy headers from 127.0.0.1, the same worker count), so the ceiling
is as fast as the stack allows and the app's figures divided by these say what the app's own code costs.
It reads BARE_DATABASE_URL, BARE_TOTP_KEY and ARGON2_* from the environment; bench/run.py sets them and
seeds the tables (`bare_db.prepare`) before starting it.
"""

from __future__ import annotations

import os
import sys

import bare_db
import bare_signin
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


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app() -> Starlette:
    secret = os.environ.get("SECRET_KEY", "bench-bare-secret")
    app = Starlette(
        routes=[Route("/", page), Route("/healthz", healthz), *bare_signin.ROUTES],
        middleware=[Middleware(SessionMiddleware, secret_key=secret)],
    )
    app.state.ceiling = bare_db.ceiling_from(os.environ)
    return app


if __name__ == "__main__":
    import uvicorn

    from web.serving import NoDelayHttpToolsProtocol

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(
        "bare_app:create_app",
        factory=True,
        port=port,
        workers=workers,
        proxy_headers=True,
        http=NoDelayHttpToolsProtocol,
        loop="uvloop",
        log_level="warning",
    )
