"""Response headers (security requirements 6, 29, 35, 36): CSP, nosniff, Referrer-Policy, HSTS and no-store on
every kind of answer, including redirects, errors, htmx partials and static files; static files cached for a
year (they are fingerprinted) and compressed; templates that need neither inline script nor inline style."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.conftest import Auth, Member, csrf_of, setup_key

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
HX = {"HX-Request": "true", "HX-Request-Type": "partial"}
REQUIRED_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'wasm-unsafe-eval'", "*", "data:", "http:", "https:")


def parse_csp(value: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            assert words[0].lower() not in directives, f"directive {words[0]} given twice"
            directives[words[0].lower()] = words[1:]
    return directives


def check_headers(response: object, *, https: bool = True, label: str = "") -> None:
    """The headers rules 35 and 36 ask of every response."""
    headers = response.headers  # type: ignore[attr-defined]
    assert len(headers.get_list("content-security-policy")) == 1, label
    csp = parse_csp(headers["content-security-policy"])
    for directive, sources in REQUIRED_CSP.items():
        assert csp.get(directive) == sources, f"{label}: {directive} is {csp.get(directive)}"
    for directive in ("script-src", "style-src", "default-src"):
        for source in csp.get(directive, []):
            assert source.lower() not in UNSAFE, f"{label}: {directive} allows {source}"
    assert headers.get("x-content-type-options") == "nosniff", label
    assert headers.get("referrer-policy") in ("no-referrer", "same-origin"), label
    assert headers.get("cross-origin-opener-policy") == "same-origin", label
    assert headers.get("x-frame-options", "DENY") == "DENY", label
    hsts = headers.get("strict-transport-security")
    if https:
        match = re.match(r"max-age=(\d+)", hsts or "")
        assert match and int(match.group(1)) >= 31536000, f"{label}: HSTS {hsts!r}"
    else:
        assert hsts is None, f"{label}: HSTS sent over plain http"
    assert "Traceback" not in response.text, label  # type: ignore[attr-defined]


DATA_BLOCK = re.compile(r'<script type="application/json" id="[\w-]+">(.*?)</script>', flags=re.S)


def without_data_blocks(html: str) -> str:
    """JSON data blocks (passkey options) are never run and CSP's script-src doesn't apply to them; they may
    hold no markup (Jinja's `tojson` escapes <, > and &), so they can't end early and smuggle a script in."""
    for block in DATA_BLOCK.findall(html):
        assert "<" not in block and ">" not in block, "markup inside a JSON data block"
    return DATA_BLOCK.sub("", html)


def check_markup(response: object, label: str) -> None:
    """Rule 35: nothing the CSP would block (inline script, inline style, event-handler attributes)."""
    if "text/html" not in response.headers.get("content-type", ""):  # type: ignore[attr-defined]
        return
    html = without_data_blocks(response.text)  # type: ignore[attr-defined]
    for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I):
        assert re.search(r"\bsrc=", tag), f"{label}: inline script {tag}"
    assert not re.search(r"<script\b[^>]*>[^<]+</script>", html, flags=re.I), label
    assert not re.search(r"<style\b", html, flags=re.I), f"{label}: <style> element"
    assert not re.search(r"\sstyle\s*=", html, flags=re.I), f"{label}: style attribute"
    assert not re.search(r"\s(on[a-z]+|hx-on[:\w-]*)\s*=", html, flags=re.I), f"{label}: inline handler"
    assert "javascript:" not in html.lower(), label


def boom(request: Request) -> Response:
    raise RuntimeError("SELECT secret FROM totp_device -- this must not reach the browser")


@pytest.fixture
def raw_client(app: Starlette) -> Iterator[TestClient]:
    """A client that sees the app's 500 page instead of the exception (a route that fails on purpose)."""
    app.router.routes.append(Route("/__boom", boom))
    with TestClient(app, base_url="https://testserver", follow_redirects=False, raise_server_exceptions=False) as c:
        yield c


def every_kind_of_response(auth: Auth, raw_client: TestClient, admin: Member) -> list[tuple[str, object]]:
    client = auth.client
    responses: list[tuple[str, object]] = [
        ("200 sign-in page", client.get("/login")),
        ("303 anonymous", client.get("/settings")),
        ("401 htmx anonymous", client.get("/settings", headers=HX)),
        ("403 CSRF", client.post("/login", data={"email": "x@example.com"})),
        ("404 page", client.get("/no/such/page")),
        ("404 static", client.get("/static/no-such-file.js")),
        ("405", client.get("/logout")),
        ("413", client.post("/login", content=b"a=" + b"x" * 20000, headers={"Content-Type": "text/plain"})),
        ("422 wrong password", auth.post("/login", {"email": admin.email, "password": "wrong password!"})),
        ("500", raw_client.get("/__boom")),
        ("static css", client.get("/static/app.css")),
        ("static js", client.get("/static/app.js", headers={"Accept-Encoding": "gzip"})),
    ]
    auth.login(admin)
    member = auth.create("agent@example.com", "agent")
    responses += [
        ("200 settings", client.get("/settings")),
        ("200 dashboard", client.get("/")),
        ("200 htmx partial", client.get("/settings?section=mfa", headers=HX)),
        ("200 team", client.get("/team")),
        ("200 activity", client.get("/activity")),
        ("200 activity csv", client.get("/activity.csv")),
        ("200 totp panel", client.get("/settings/mfa/totp", headers=HX)),
    ]
    token = csrf_of(client.get("/settings").text)
    responses.append(("200 QR code", client.post("/settings/mfa/totp/enable", data={"csrf_token": token}, headers=HX)))
    responses.append(
        ("303 activate without htmx", client.post("/settings/mfa/totp/enable", data={"csrf_token": token}))
    )
    responses.append(("200 QR code page", client.get("/settings/mfa/totp")))
    response = client.get("/settings/mfa/totp", headers=HX)
    admin.secret = setup_key(response.text)
    responses.append(
        (
            "422 wrong code",
            client.post("/settings/mfa/totp/confirm", data={"csrf_token": token, "code": "000000"}, headers=HX),
        )
    )
    codes = client.post(
        "/settings/mfa/totp/confirm", data={"csrf_token": token, "code": admin.fresh_code()}, headers=HX
    )
    responses.append(("200 backup codes", codes))
    token = csrf_of(client.get("/settings").text)
    responses += [
        ("200 regenerated codes", client.post("/settings/mfa/backup-codes/regenerate", data={"csrf_token": token})),
        ("200 webhooks", client.get("/settings/webhooks")),
        (
            "200 webhook secret",
            client.post("/settings/webhooks", data={"csrf_token": token, "url": "https://a.example"}),
        ),
        ("200 billing partial", client.get("/settings/billing", headers=HX)),
        ("403 admin only", auth_as(auth, member, "/team")),
    ]
    return responses


def auth_as(auth: Auth, member: Member, path: str) -> object:
    auth.logout()
    auth.login(member)
    return auth.client.get(path)


def test_every_kind_of_response_carries_the_security_headers(auth: Auth, raw_client: TestClient, admin: Member) -> None:
    """Rules 35/36: CSP (no inline or eval, frame-ancestors/object-src/base-uri 'none', form-action 'self'),
    nosniff, Referrer-Policy, COOP, HSTS and no-store on 200, 303, 401, 403, 404, 405, 413, 422, 500, partials
    and pages holding secrets, the security headers on static files too; and no HTML needs inline script or
    style."""
    responses = every_kind_of_response(auth, raw_client, admin)
    statuses = {getattr(r, "status_code", 0) for _, r in responses}
    assert {200, 303, 401, 403, 404, 405, 413, 422, 500} <= statuses
    for label, response in responses:
        check_headers(response, label=label)
        check_markup(response, label)
        # Rules 6 and 36: every signed-in page, and anything holding the QR code, setup key, backup codes or a
        # webhook secret, is `Cache-Control: no-store` (only fingerprinted static files may be cached).
        if not label.startswith("static"):
            assert "no-store" in response.headers.get("cache-control", ""), label  # type: ignore[attr-defined]


def test_server_error_is_generic(raw_client: TestClient) -> None:
    """Rule 37: an unexpected exception gives a generic page, no trace, no SQL, no exception text."""
    response = raw_client.get("/__boom")
    assert response.status_code == 500
    assert "Traceback" not in response.text and "SELECT" not in response.text and "RuntimeError" not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_static_files_are_cached_for_a_year_and_compressed(client: TestClient) -> None:
    """Static files are fingerprinted (`?v=<hash>` of their content), so they may be immutable for a year;
    the big ones are gzipped."""
    page = client.get("/login").text
    links = re.findall(r'(?:src|href)="(/static/[^"?]+)\?v=([0-9a-f]+)"', page)
    assert {Path(p).name for p, _ in links} >= {"app.css", "app.js"}
    for path, version in links:
        content = (STATIC / Path(path).name).read_bytes()
        assert hashlib.sha256(content).hexdigest().startswith(version), f"{path}: stale fingerprint"
        response = client.get(f"{path}?v={version}", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        cache = response.headers["cache-control"]
        assert "max-age=31536000" in cache and "immutable" in cache and "no-store" not in cache
        assert response.content == content
        if len(content) > 1000:
            assert response.headers.get("content-encoding") == "gzip", path
            assert "accept-encoding" in response.headers.get("vary", "").lower()
    assert any(len((STATIC / Path(p).name).read_bytes()) > 1000 for p, _ in links), "nothing big enough to gzip"


def test_no_hsts_over_plain_http(app: Starlette) -> None:
    """Rule 36: HSTS only over HTTPS (over http it would be ignored, and local runs are http)."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        for path in ("/login", "/settings", "/static/app.css"):
            check_headers(client.get(path), https=False, label=path)


def test_partials_vary_on_the_htmx_headers(auth: Auth, member: Member) -> None:
    """Rule 29: a URL that answers a page or a partial says so in `Vary`, so no cache mixes them up."""
    auth.login(member)
    full = auth.client.get("/settings?section=mfa")
    part = auth.client.get("/settings?section=mfa", headers=HX)
    assert "<html" in full.text and "<html" not in part.text
    for response in (full, part):
        assert "hx-request" in response.headers.get("vary", "").lower()


def test_spoofed_htmx_headers_are_not_echoed_or_followed(auth: Auth, member: Member) -> None:
    """Rule 29: HX-Current-URL / HX-Target are hints, never used as a redirect and never echoed."""
    evil = "https://evil.example/<script>x</script>"
    headers = HX | {"HX-Current-URL": evil, "HX-Target": evil, "HX-Trigger": evil}
    anonymous = auth.client.get("/settings", headers=headers)
    assert "evil.example" not in anonymous.text and "evil.example" not in str(anonymous.headers)
    auth.login(member)
    for path in ("/settings", "/settings/mfa/totp", "/activity"):
        response = auth.client.get(path, headers=headers)
        assert "evil.example" not in response.text and "evil.example" not in str(response.headers), path


def template_files() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_templates_have_no_inline_script_style_or_handlers() -> None:
    """Rule 35 at the source: `script-src 'self'` and `style-src 'self'` hold only if no template needs
    inline code; htmx's `hx-on` and `js:` values would need 'unsafe-eval'."""
    files = template_files()
    assert len(files) >= 10
    problems = []
    for path in files:
        text = re.sub(r'<script type="application/json" id="[^"]+">\{\{[^<]*\}\}</script>', "", path.read_text())
        name = path.relative_to(TEMPLATES)
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            if not re.search(r"\bsrc=", tag):
                problems.append(f"{name}: inline <script>")
        if re.search(r"<script\b[^>]*>\s*[^<\s]", text, flags=re.I):
            problems.append(f"{name}: code inside <script>")
        patterns = {
            "<style>": r"<style\b",
            "style=": r"\sstyle\s*=",
            "hx-on": r"hx-on",
            "on<event>=": r"\son[a-z]+\s*=",
            "javascript:": r"javascript:",
            "js: value": r"""=\s*['"]\s*js:""",
        }
        for label, pattern in patterns.items():
            if re.search(pattern, text, flags=re.I):
                problems.append(f"{name}: {label}")
    assert not problems, problems
