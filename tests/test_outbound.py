"""Outbound URLs cannot reach inside (requirement 48): refused when saved, and again at delivery."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine
from sqlmodel import select

from db import delivery, outbound
from db.engine import open_session
from db.models import Webhook
from tests.conftest import Auth, Clock, Member, make_settings
from web.config import Settings

HX = {"HX-Request": "true", "HX-Request-Type": "partial"}
PUBLIC = "93.184.215.14"
INTERNAL_URLS = [
    "https://127.0.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/",
    "https://10.0.0.1/",
    "https://172.16.5.4/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",  # carrier-grade NAT
    "https://0.0.0.0/",
    "https://[::]/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://[ff02::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:a9fe:a9fe]/",
    "https://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "https://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "https://2130706433/",
    "https://0x7f.1/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://0x7f000001:8443/x",
    "https://localhost/",
    "https://localhost./",
    "https://api.localhost/",
    "https://metadata.google.internal/",
    "https://printer.local/",
    "https://router.home.arpa/",
    "https://intranet/",
]


class Dns:
    """The names a test can resolve (the sandbox has no DNS); any other name fails as a resolver would."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {}

    def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


def resolver_for(table: dict[str, list[str]]) -> Dns:
    dns = Dns()
    dns.table.update(table)
    return dns


@pytest.fixture
def dns() -> Dns:
    return Dns()


@pytest.fixture
def settings(tmp_path: Path, clock: Clock, dns: Dns) -> Settings:
    return make_settings(tmp_path, totp_clock=clock, resolver=dns)


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_check_url_refuses_internal_addresses(url: str) -> None:
    with pytest.raises(outbound.Refused) as refused:
        outbound.check_url(url, resolver=resolver_for({}))
    assert refused.value.field == "url"


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["10.1.2.3"], [PUBLIC, "192.168.0.7"], ["fe80::1%eth0"], ["::1"]])
def test_check_url_refuses_names_that_resolve_inside(answer: list[str]) -> None:
    with pytest.raises(outbound.Refused, match="inside"):
        outbound.check_url("https://hooks.example.com/x", resolver=resolver_for({"hooks.example.com": answer}))


def test_check_url_accepts_a_public_name_and_address() -> None:
    target = outbound.check_url(
        "https://Hooks.Example.com:8443/in?a=1", resolver=resolver_for({"hooks.example.com": [PUBLIC]})
    )
    assert target == outbound.Target("hooks.example.com", 8443, "/in?a=1", (PUBLIC,))
    assert outbound.check_url(f"https://{PUBLIC}/", resolver=resolver_for({})).addresses == (PUBLIC,)


def test_check_url_explains_a_name_that_does_not_resolve() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(outbound.Refused, match="couldn't find the host nowhere.example"):
        outbound.check_url("https://nowhere.example/", resolver=failing)


def test_add_webhook_refuses_internal_url_with_a_field_error(auth: Auth, admin: Member, engine: Engine) -> None:
    auth.login(admin)
    for url in ("https://127.0.0.1/", "https://169.254.169.254/latest", "https://localhost/", "https://0x7f.1/"):
        response = auth.post("/settings/webhooks", {"url": url}, page="/settings/webhooks", headers=HX)
        assert response.status_code == 422 and "points inside" in response.text
    with open_session(engine) as session:
        assert session.exec(select(Webhook)).all() == []


def test_add_webhook_refuses_a_name_that_resolves_inside(auth: Auth, admin: Member, engine: Engine, dns: Dns) -> None:
    auth.login(admin)
    dns.table["hooks.example.com"] = [PUBLIC, "10.0.0.5"]
    response = auth.post("/settings/webhooks", {"url": "https://hooks.example.com/"}, page="/settings/webhooks")
    assert response.status_code == 422 and "points inside" in response.text
    dns.table["hooks.example.com"] = [PUBLIC]
    response = auth.post("/settings/webhooks", {"url": "https://hooks.example.com/"}, page="/settings/webhooks")
    assert response.status_code == 200
    with open_session(engine) as session:
        assert [h.url for h in session.exec(select(Webhook))] == ["https://hooks.example.com/"]


def test_add_webhook_when_dns_fails_is_a_field_error_not_500(auth: Auth, admin: Member) -> None:
    auth.login(admin)
    response = auth.post("/settings/webhooks", {"url": "https://hooks.example.com/"}, page="/settings/webhooks")
    assert response.status_code == 422 and "find the host hooks.example.com" in response.text


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A self-signed certificate for hooks.example.com only (not for 127.0.0.1): the key file and the PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.com")])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.com")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path_factory.mktemp("tls") / "server.pem"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(key_pem + pem)
    return path, pem


@pytest.fixture
def receiver(tls_pair: tuple[Path, bytes]) -> Iterator[tuple[int, list[dict[str, object]]]]:
    """A real HTTPS server on 127.0.0.1 that records what it receives, and its port."""
    seen: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body, "sni": self.server.sni})  # type: ignore[attr-defined]
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_pair[0])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.sni = None  # type: ignore[attr-defined]

    def remember(sock: ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext) -> None:
        server.sni = name  # type: ignore[attr-defined]

    context.sni_callback = remember
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def test_send_connects_to_the_checked_address_with_the_name_as_sni_and_host(
    receiver: tuple[int, list[dict[str, object]]], tls_pair: tuple[Path, bytes]
) -> None:
    port, seen = receiver
    # hooks.example.com resolves nowhere here: the connection can only have gone to the checked address.
    target = outbound.Target("hooks.example.com", port, "/in", ("127.0.0.1",))
    tls = ssl.create_default_context(cadata=tls_pair[1].decode())
    body = b'{"event":"test"}'
    status = delivery.send(target, body, secret="whsec_x", context=tls, timeout=2.0, at=1700000000)
    assert status == 204
    (request,) = seen
    headers = request["headers"]
    assert request["sni"] == "hooks.example.com" and headers["Host"] == f"hooks.example.com:{port}"  # type: ignore[index]
    expected = hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers[delivery.SIGNATURE_HEADER] == f"t=1700000000,v1={expected}"  # type: ignore[index]
    assert request["path"] == "/in" and request["body"] == body


def test_send_verifies_the_certificate_against_the_name(
    receiver: tuple[int, list[dict[str, object]]], tls_pair: tuple[Path, bytes]
) -> None:
    port, seen = receiver
    target = outbound.Target("other.example.com", port, "/", ("127.0.0.1",))
    tls = ssl.create_default_context(cadata=tls_pair[1].decode())
    with pytest.raises(delivery.DeliveryFailed, match="certificate"):
        delivery.send(target, b"{}", secret="s", context=tls, timeout=2.0, at=0)
    assert seen == []


def test_deliver_refuses_a_name_that_turned_internal(receiver: tuple[int, list[dict[str, object]]]) -> None:
    """DNS rebinding: public when saved, 127.0.0.1 when delivered. The delivery resolves once and refuses."""
    port, seen = receiver
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    url = f"https://hooks.example.com:{port}/in"
    outbound.check_url(url, resolver=rebinding)  # when the webhook is saved
    with pytest.raises(outbound.Refused, match="inside"):
        delivery.deliver(url, b"{}", secret="s", resolver=rebinding, timeout=2.0)
    assert calls == ["hooks.example.com", "hooks.example.com"] and seen == []


def test_why_internal_uses_the_stdlib_classification() -> None:
    assert outbound.why_internal(ipaddress.ip_address(PUBLIC)) is None
    assert outbound.why_internal(ipaddress.ip_address("2606:4700::1111")) is None
    assert outbound.why_internal(ipaddress.ip_address("::ffff:10.0.0.1")) == "private"
