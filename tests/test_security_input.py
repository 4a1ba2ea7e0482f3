"""Bad input (security requirements 12, 33, 37 and issue #4 item 7): codes are exactly six ASCII digits once
spaces are removed, anything else is the generic "incorrect code" and counts as a failure; every field is
bounded; oversized bodies are 413; broken encodings, JSON, bad cookies and huge headers get a clear 4xx;
`next` never leaves the site; nothing answers 500 or shows a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from db import throttle
from db.engine import open_session
from db.models import Throttle
from tests.conftest import Auth, Member, csrf_of, setup_key

COOKIE = "__Host-chat360_session"
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


def failures(engine: Engine, member: Member) -> int:
    with open_session(engine) as session:
        row = session.get(Throttle, throttle.user_key(member.user.id or 0))
        return row.failures if row else 0


def clean(response: object) -> None:
    """Rule 37: a 4xx the member can read; no 500, no trace, no SQL."""
    status, body = response.status_code, response.text  # type: ignore[attr-defined]
    assert 400 <= status < 500, status
    for leak in ("Traceback", "sqlalchemy", "SELECT ", "Exception"):
        assert leak not in body, leak


# Each builds the bad input from the right code, so only its form is wrong.
MALFORMED = {
    "fullwidth digits": lambda c: c.translate(FULLWIDTH),
    "Arabic-Indic digits": lambda c: c.translate(ARABIC_INDIC),
    "Devanagari digits": lambda c: c.translate(DEVANAGARI),
    "literal fullwidth": lambda c: "１２３４５６",
    "literal Arabic-Indic": lambda c: "١٢٣٤٥٦",
    "5 digits": lambda c: c[:5],
    "7 digits": lambda c: c + "0",
    "sign": lambda c: "+" + c[:5],
    "minus": lambda c: "-" + c[:5],
    "exponent": lambda c: "1e5",
    "NUL": lambda c: c[:5] + "\x00",
    "NUL after the code": lambda c: c + "\x00",
    "empty": lambda c: "",
    "very long": lambda c: c * 2000,
    "no-break space inside": lambda c: c[:3] + "\u00a0" + c[3:],
    "superscripts": lambda c: "¹²³⁴⁵⁶",
    "letters": lambda c: "abcdef",
    "decimal point": lambda c: c[:3] + "." + c[3:5],
}


def test_malformed_code_is_a_generic_counted_failure(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    """Rule 12: only ASCII digits count as digits (pyotp's NFKC comparison would let fullwidth digits of the
    right code through; Python's \\d and int() take other scripts' digits); the answer is the generic 422
    and the attempt counts against the throttle. Each form is tried in its own sign-in, which the right code
    then completes (so the count starts again)."""
    member = member_with_totp
    for name, malformed in MALFORMED.items():
        auth.password(member)
        code = member.fresh_code()
        response = auth.post("/login/verify", {"code": malformed(code)}, page="/login/verify")
        clean(response)
        assert response.status_code == 422 and "Incorrect code" in response.text, name
        assert failures(engine, member) == 1, f"{name}: not counted as a failure"
        assert auth.post("/login/verify", {"code": code}, page="/login/verify").status_code == 303, name
        auth.logout()


def test_ascii_spaces_around_and_inside_a_code_are_fine(auth: Auth, member_with_totp: Member) -> None:
    """Rule 12: spaces (as authenticator apps group digits) and surrounding whitespace are stripped."""
    for form in ["{a} {b}", " {a}{b} ", "\t{a} {b}\t", "{a}  {b}", "{a}{b}"]:
        code = member_with_totp.fresh_code()
        auth.password(member_with_totp)
        typed = form.format(a=code[:3], b=code[3:])
        assert auth.post("/login/verify", {"code": typed}, page="/login/verify").status_code == 303, repr(typed)
        auth.logout()


def test_every_code_field_refuses_lookalike_digits(auth: Auth, member: Member, engine: Engine) -> None:
    """Rule 12 on the other paths that take a code: Confirm, "Confirm it's you" and Disable."""
    auth.login(member)
    response = auth.post("/settings/mfa/totp/enable", page="/settings", headers={"HX-Request": "true"})
    member.secret = setup_key(response.text)
    code = member.fresh_code()
    response = auth.post("/settings/mfa/totp/confirm", {"code": code.translate(FULLWIDTH)}, page="/settings")
    clean(response)
    assert response.status_code == 422 and "Incorrect code" in response.text
    assert failures(engine, member) == 1
    assert auth.post("/settings/mfa/totp/confirm", {"code": code}, page="/settings").status_code == 200
    fields = {"reauth_factor": "totp", "reauth_method": "GET", "reauth_next": "/settings"}
    response = auth.post(
        "/reauth", fields | {"reauth_secret": member.fresh_code().translate(FULLWIDTH)}, page="/settings"
    )
    clean(response)
    assert response.status_code == 422
    response = auth.post(
        "/settings/mfa/totp/disable", {"code": member.fresh_code().translate(ARABIC_INDIC)}, page="/settings"
    )
    clean(response)
    assert response.status_code == 422
    assert failures(engine, member) == 2  # the right code at Confirm cleared the first


MALFORMED_BACKUP = {
    "fullwidth letters": lambda c: c.translate(
        str.maketrans("ABCDEFGHJKMNPQRSTVWXYZ", "ＡＢＣＤＥＦＧＨＪＫＭＮＰＱＲＳＴＶＷＸＹＺ")
    ),
    "en dashes": lambda c: c.replace("-", "\u2013"),
    "long s for S": lambda c: c.replace("S", "\u017f") if "S" in c else "\u017f" + c[1:],
    "too short": lambda c: c[:-1],
    "too long": lambda c: c + "2",
    "NUL": lambda c: c + "\x00",
    "very long": lambda c: c * 50,
    "empty": lambda c: "",
}


def test_malformed_backup_code_is_a_generic_counted_failure(
    auth: Auth, member_with_totp: Member, engine: Engine
) -> None:
    """Rules 12 and 19: a backup code is forgiving in case, spaces and dashes only; any other form of a right
    code is the generic 422 and counts (each in its own sign-in, completed by an authenticator code)."""
    member = member_with_totp
    assert member.codes
    for name, typed in MALFORMED_BACKUP.items():
        auth.password(member)
        response = auth.post(
            "/login/verify", {"method": "backup", "backup_code": typed(member.codes[0])}, page="/login/verify"
        )
        clean(response)
        assert response.status_code == 422 and "Incorrect backup code" in response.text, name
        assert failures(engine, member) == 1, f"{name}: not counted as a failure"
        assert auth.post("/login/verify", {"code": member.fresh_code()}, page="/login/verify").status_code == 303
        auth.logout()


LONG = "a" * 8000


def test_every_field_is_bounded(auth: Auth, engine: Engine) -> None:
    """Rule 37 / issue #4: 8000-character values in every field of every form give a 4xx or a normal answer,
    never a 500 (on PostgreSQL an unbounded value would overflow a column), and are not echoed at length."""
    admin = auth.create("admin@example.com", "admin")
    response = auth.post("/login", {"email": LONG + "@example.com", "password": LONG, "next": "/" + LONG})
    clean(response)
    assert LONG[:400] not in response.text
    auth.login(admin)
    posts = {
        "/team/members": {"email": LONG + "@example.com", "role": LONG},
        "/team/policy": {"require_admins": LONG, "grace_days": LONG},
        f"/team/{admin.user.id}/role": {"role": LONG},
        "/settings/webhooks": {"url": "https://example.com/" + LONG},
        "/settings/billing": {"plan": LONG, "billing_email": LONG + "@example.com"},
        "/reauth": {"reauth_secret": LONG, "reauth_next": "/" + LONG, "reauth_method": LONG, "reauth_factor": LONG},
        "/settings/mfa/totp/confirm": {"code": LONG},
        "/settings/mfa/totp/disable": {"code": LONG, "method": LONG, "backup_code": LONG},
        "/settings/password": {"current_password": LONG, "new_password": LONG},
    }
    for path, data in posts.items():
        response = auth.post(path, data, page="/settings")
        assert response.status_code < 500, path
        assert "Traceback" not in response.text, path
        assert LONG[:600] not in response.text, f"{path} echoes the whole value"
    target = auth.create("member@example.com")
    reason = auth.post(f"/team/{target.user.id}/reset-mfa", {"reason": LONG}, page="/team")
    assert reason.status_code < 500
    huge_agent = auth.client.get("/settings", headers={"User-Agent": LONG})
    assert huge_agent.status_code == 200
    auth.logout()
    response = auth.client.post(
        "/login",
        data={"csrf_token": csrf_of(auth.client.get("/login").text), "email": admin.email, "password": "x"},
        headers={"User-Agent": LONG},
    )
    clean(response)


NUL_FIELDS = [
    pytest.param(
        "/login",
        {"email": "someone\x00@example.com", "password": "x"},
        False,
        id="sign-in email",
    ),
    pytest.param("/login", {"email": "admin@example.com", "password": "x\x00y"}, False, id="sign-in password"),
    pytest.param("/login", {"email": "x@example.com", "password": "x", "next": "/a\x00b"}, False, id="next"),
    pytest.param("/login/verify", {"code": "12\x003456"}, False, id="code"),
    pytest.param(
        "/settings/webhooks",
        {"url": "https://hooks.example/\x00"},
        True,
        id="webhook url",
    ),
    pytest.param(
        "/team/{id}/reset-mfa",
        {"reason": "lost\x00"},
        True,
        id="reset reason",
    ),
    pytest.param("/team/members", {"email": "n\x00@example.com", "role": "agent"}, True, id="member email"),
    pytest.param("/settings/billing", {"plan": "team", "billing_email": "b\x00@example.com"}, True, id="billing"),
    pytest.param("/settings/password", {"current_password": "x\x00", "new_password": "y\x00" * 20}, True, id="pw"),
    pytest.param("/team/policy", {"grace_days": "\x00", "require_admins": "\x00"}, True, id="policy"),
    pytest.param(
        "/reauth",
        {"reauth_secret": "\x00", "reauth_factor": "password", "reauth_method": "GET", "reauth_next": "/\x00"},
        True,
        id="reauth",
    ),
]


@pytest.mark.parametrize(("path", "data", "as_admin"), NUL_FIELDS)
def test_nul_bytes_in_any_field_never_500(
    app: Starlette, engine: Engine, auth: Auth, path: str, data: dict[str, str], as_admin: bool
) -> None:
    """Rule 37: a NUL byte (which PostgreSQL text can't hold) in any field gives a 4xx or a normal answer."""
    admin = auth.create("admin@example.com", "admin")
    with TestClient(app, base_url="https://testserver", follow_redirects=False, raise_server_exceptions=False) as c:
        browser = Auth(c, engine, auth.settings)
        if as_admin:
            browser.login(admin)
        response = browser.post(path.format(id=admin.user.id), data, page="/settings" if as_admin else "/login")
        assert response.status_code < 500 and "Traceback" not in response.text, response.status_code


def test_body_over_the_limit_is_413(auth: Auth, member: Member) -> None:
    """Rule 37 / issue #4: a body over 16 KiB is refused before anything reads it, with or without a
    Content-Length, and the session stays as it was."""
    token = csrf_of(auth.client.get("/login").text)
    big = {"csrf_token": token, "email": member.email, "password": member.password, "pad": "x" * (17 * 1024)}
    response = auth.client.post("/login", data=big)
    clean(response)
    assert response.status_code == 413 and "too large" in response.text

    def chunks() -> Iterator[bytes]:  # a streamed body has no Content-Length
        yield f"csrf_token={token}&email={member.email}&password=x&pad=".encode()
        for _ in range(20):
            yield b"y" * 1024

    response = auth.client.post(
        "/login", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    clean(response)
    assert response.status_code == 413
    just_under = {"csrf_token": token, "email": member.email, "password": member.password, "pad": "x" * 15000}
    assert auth.client.post("/login", data=just_under).status_code == 303


def raw_post(client: TestClient, path: str, body: bytes, content_type: str, token: str | None = None) -> object:
    headers = {"Content-Type": content_type} | ({"X-CSRF-Token": token} if token else {})
    return client.post(path, content=body, headers=headers)


def test_broken_encodings_and_json_are_clear_4xx(auth: Auth, member: Member) -> None:
    """Rule 37: `%ff`, raw non-UTF-8 bytes, JSON and nonsense content types sent to form routes give a 4xx
    with a generic page, never a 500."""
    token = csrf_of(auth.client.get("/login").text)
    form = "application/x-www-form-urlencoded"
    cases = [
        (f"csrf_token={token}&email=%ff%fe&password=%ff".encode(), form, None),
        (f"csrf_token={token}&email=%&password=%%".encode(), form, None),
        (b"email=\xff\xfe&password=\xc3", form, token),
        (f"csrf_token={token}&email=\xff".encode("latin-1"), form, None),
        (b'{"email": "agent@example.com", "password": "x"}', "application/json", token),
        (b"[1, 2, 3", "application/json", token),
        (
            b'--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n\xff\r\n--x--',
            "multipart/form-data; boundary=x",
            token,
        ),
        (b"--broken", "multipart/form-data", token),
        (b"\x00\x01\x02", "application/octet-stream", token),
        (b"a=" + b"&" * 5000, form, token),
    ]
    for body, content_type, header_token in cases:
        for path in ("/login", "/login/verify"):
            response = raw_post(auth.client, path, body, content_type, header_token)
            clean(response)
    auth.login(member)
    token = csrf_of(auth.client.get("/settings").text)
    for body, content_type, _ in cases:
        response = raw_post(auth.client, "/settings/mfa/totp/confirm", body, content_type, token)
        assert response.status_code < 500 and "Traceback" not in response.text  # type: ignore[attr-defined]


BAD_COOKIES = [
    "garbage",
    "!!!%%%",
    "a.b.c",
    "eyJhIjoxfQ",
    "eyJhIjoxfQ.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "x" * 4000,
    "\u00e9t\u00e9",
    '"quoted"',
]


def test_bad_cookies_are_an_empty_session(client: TestClient) -> None:
    """Rule 37: a garbage, forged or oversized cookie is an empty session, never an error."""
    for value in BAD_COOKIES:
        header = {"Cookie": COOKIE.encode() + b"=" + value.encode()}  # raw bytes: non-ASCII goes as sent
        assert client.get("/settings", headers=header).headers["location"].startswith("/login?"), value
        response = client.get("/login", headers=header)
        assert response.status_code == 200, value
        assert client.post("/logout", data={"csrf_token": "x"}, headers=header).status_code == 403, value


def test_tampered_or_truncated_cookie_is_anonymous(auth: Auth, member: Member) -> None:
    """Rule 37: a signed-in cookie cut short or with a changed signature or payload signs no one in."""
    auth.login(member)
    good = auth.client.cookies.get(COOKIE) or ""
    payload, stamp, signature = good.split(".")
    variants = [
        good[: len(good) // 2],
        good[:-1],
        f"{payload}.{stamp}.{signature[::-1]}",
        f"{payload[:-2]}AA.{stamp}.{signature}",
        f"{payload}.{stamp}",
        f"{payload}..{signature}",
        f"{good}.{good}",
    ]
    for value in variants:
        auth.client.cookies.clear()
        auth.client.cookies.set(COOKIE, value, domain="testserver.local")
        response = auth.client.get("/settings")
        assert response.status_code == 303 and response.headers["location"].startswith("/login?"), value
    auth.client.cookies.clear()
    auth.client.cookies.set(COOKIE, good, domain="testserver.local")
    assert auth.client.get("/settings").status_code == 200


def test_huge_and_odd_headers_never_500(client: TestClient) -> None:
    """Rule 37: very long or numerous headers, and odd Host/Origin values, answer normally or with a 4xx."""
    many = {f"X-Pad-{i}": "v" * 100 for i in range(200)}
    for headers in (
        {"User-Agent": "u" * 16000},
        {"Accept-Language": "x" * 16000},
        many,
        {"HX-Request": "true", "HX-Current-URL": "x" * 16000},
        {"Cookie": "; ".join(f"c{i}={'v' * 50}" for i in range(300))},
    ):
        response = client.get("/login", headers=headers)
        assert response.status_code < 500 and "Traceback" not in response.text


EVIL_NEXT = [
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%5Cevil.example",
    "/%2F/evil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/\r\nLocation: https://evil.example",
    " //evil.example",
    "///evil.example",
]


def local(location: str) -> bool:
    resolved = urlsplit(urljoin("https://testserver/login", location))
    return resolved.netloc == "testserver" and resolved.scheme == "https" and "\\" not in location


def test_next_never_leaves_the_site(auth: Auth, member: Member) -> None:
    """Rule 33: `next` after sign-in (and on the sign-in page it is echoed into) only ever names a local path."""
    for target in EVIL_NEXT:
        page = auth.client.get("/login", params={"next": target})
        assert page.status_code == 200 and "evil.example" not in page.text, target
        response = auth.post("/login", {"email": member.email, "password": member.password, "next": target})
        assert response.status_code == 303, target
        location = response.headers["location"]
        assert local(location) and "evil.example" not in location, (target, location)
        auth.logout()


def test_reauth_return_target_never_leaves_the_site(auth: Auth, member_with_totp: Member) -> None:
    """Rules 30 and 33: the return target of "Confirm it's you" is validated too."""
    auth.login(member_with_totp)
    for target in EVIL_NEXT:
        assert "evil.example" not in auth.client.get("/reauth", params={"next": target}).text, target
        fields = {"reauth_factor": "totp", "reauth_secret": member_with_totp.fresh_code(), "reauth_method": "GET"}
        response = auth.post("/reauth", fields | {"reauth_next": target}, page="/settings")
        assert response.status_code == 303, target
        assert local(response.headers["location"]), (target, response.headers["location"])


@pytest.mark.parametrize("big", ["9223372036854775808", "9" * 30])
def test_out_of_range_ids_are_not_found_never_500(app: Starlette, engine: Engine, auth: Auth, big: str) -> None:
    """Rule 37: an id no row can have is a 404 (or an ignored filter), never a 500."""
    admin = auth.create("admin@example.com", "admin")
    with TestClient(app, base_url="https://testserver", follow_redirects=False, raise_server_exceptions=False) as c:
        browser = Auth(c, engine, auth.settings)
        browser.login(admin)
        statuses = {}
        for path in ("/settings/webhooks/{}/toggle", "/settings/webhooks/{}/delete", "/team/{}/unlock"):
            statuses[path] = browser.post(path.format(big), {"enabled": "1"}, page="/settings").status_code
        for path in ("/team/{}/role", "/team/{}/reset-mfa"):
            statuses[path] = browser.post(path.format(big), {"role": "agent"}, page="/settings").status_code
        for path in ("/activity?member={}", "/activity.csv?member={}"):
            statuses[path] = c.get(path.format(big)).status_code
    assert all(status < 500 for status in statuses.values()), statuses


def test_static_files_never_leave_the_static_folder(client: TestClient) -> None:
    """Rule 37: encoded dot segments and NULs under /static find nothing outside it (the mount is the only
    file-serving route)."""
    for path in (
        "/static/%2e%2e/pyproject.toml",
        "/static/..%2fpyproject.toml",
        "/static/%2e%2e%2fweb%2fconfig.py",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/app.css%00.js",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "[project]" not in response.text and "SECRET_KEY" not in response.text and "root:" not in response.text
