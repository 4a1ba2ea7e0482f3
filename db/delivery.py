"""Delivering a webhook: resolve once, check every address, connect to a checked address.

The TCP connection goes to the address that was checked, and TLS is verified against the URL's name (SNI and
certificate) with that name as the Host header, so a DNS answer that changes between the check and the
connection (DNS rebinding) never reaches inside. Redirects are not followed; the timeout is short.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import ssl
import time
from collections.abc import Callable

from db import outbound
from db.crypto import Keyring
from db.models import Webhook

SIGNATURE_HEADER = "Chat360-Signature"
TIMEOUT = 5.0  # seconds for connecting, the TLS handshake and each read


class DeliveryFailed(Exception):
    """No checked address answered, or the TLS handshake or the exchange failed."""


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `host` (SNI, certificate, Host header) over a TCP connection to one given `address`."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        try:
            self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def signature(body: bytes, *, secret: str, at: int) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`: the time is signed too, so a receiver can
    refuse a captured delivery replayed later."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def deliver(
    url: str,
    body: bytes,
    *,
    secret: str,
    resolver: outbound.Resolver = outbound.system_resolver,
    context: ssl.SSLContext | None = None,
    timeout: float = TIMEOUT,
    clock: Callable[[], float] = time.time,
) -> int:
    """POST `body` (JSON) to `url`, signed with `secret`; the response status. Raises outbound.Refused when
    the URL or any address its name resolves to now is internal, DeliveryFailed when no address answers."""
    target = outbound.check_url(url, resolver=resolver)
    return send(target, body, secret=secret, context=context, timeout=timeout, at=int(clock()))


def send(
    target: outbound.Target, body: bytes, *, secret: str, context: ssl.SSLContext | None, timeout: float, at: int
) -> int:
    """POST to the checked addresses of `target` in turn, never resolving its name again."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Chat360-Webhooks/1",
        SIGNATURE_HEADER: signature(body, secret=secret, at=at),
    }
    tls = context or ssl.create_default_context()
    failures: list[str] = []
    for address in target.addresses:
        connection = PinnedHTTPSConnection(target.host, target.port, address=address, timeout=timeout, context=tls)
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(64 * 1024)
            return response.status
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{address}: {exc}")
        finally:
            connection.close()
    raise DeliveryFailed("; ".join(failures))


def deliver_webhook(hook: Webhook, body: bytes, *, keyring: Keyring, **options: object) -> int:
    """Deliver to a stored webhook, signed with its secret (kept encrypted at rest)."""
    return deliver(hook.url, body, secret=keyring.decrypt(hook.secret_encrypted), **options)  # type: ignore[arg-type]  # options pass through to deliver() as they are
