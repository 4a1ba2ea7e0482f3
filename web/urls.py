"""Absolute URLs come from configuration (PUBLIC_URL), never from the request's Host header, which the
client chooses: a link built from it could send a one-time token to another site."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request


def public_url(value: str, *, port: int) -> str:
    """The validated PUBLIC_URL: http(s), a host, an optional port, nothing else; no trailing slash."""
    url = (value or f"http://localhost:{port}").strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that isn't a number
    except ValueError as exc:
        raise ValueError(f"PUBLIC_URL is not a valid URL: {value!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("PUBLIC_URL must be an http:// or https:// URL with a host, like https://chat360.example.com")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password or "?" in url or "#" in url:
        raise ValueError("PUBLIC_URL may not have a path, query, fragment or credentials")
    return url


def absolute(request: Request, name: str, /, **path_params: object) -> str:
    """The public address of a route: PUBLIC_URL and the route's path."""
    return str(request.app.state.settings.public_url) + str(request.app.url_path_for(name, **path_params))
