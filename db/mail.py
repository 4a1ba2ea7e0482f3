"""Sending one message to the configured relay, over TLS unless the URL opts out by name.

`smtp://` must upgrade with STARTTLS (smtplib refuses when the server does not offer it, so a relay or a
man in the middle that strips the offer cannot make us send in the clear), `smtps://` is TLS from the first
byte, and only `smtp+insecure://` (a relay on the same host) talks plain SMTP. Certificates are checked
against the system's CAs plus, for a private relay, the CA file given.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

# scheme -> (default port, how the connection is protected)
SCHEMES = {"smtp": (587, "starttls"), "smtps": (465, "implicit"), "smtp+insecure": (25, "none")}
TIMEOUT = 10  # seconds per socket operation; the outbox lease must outlast a whole send
# What a failed send raises: refused or dropped by the relay, TLS or certificate errors, no route.
SEND_ERRORS = (OSError, smtplib.SMTPException)


@dataclass(frozen=True)
class Relay:
    """Where and how to send; `repr` leaves out the password so a logged relay never shows it."""

    host: str
    port: int
    security: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"


def parse_relay(url: str) -> Relay:
    """The relay named by SMTP_URL; a scheme we do not know is refused rather than guessed at."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"SMTP_URL must start with one of {known} (got {parts.scheme or 'no scheme'}://)")
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host name")
    default_port, security = SCHEMES[parts.scheme]
    return Relay(
        host=parts.hostname,
        port=parts.port or default_port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password or "") if parts.username else None,
    )


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifying context: hostname and chain checked, the system CAs trusted, and `ca_file` on top."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def connect(relay: Relay, ca_file: Path | None) -> smtplib.SMTP:
    """An open, protected (unless `none`) and logged-in connection to the relay."""
    if relay.security == "implicit":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(relay.host, relay.port, timeout=TIMEOUT, context=tls_context(ca_file))
    else:
        smtp = smtplib.SMTP(relay.host, relay.port, timeout=TIMEOUT)
    try:
        if relay.security == "starttls":
            smtp.starttls(context=tls_context(ca_file))  # SMTPNotSupportedError when not offered
        if relay.username is not None:
            smtp.login(relay.username, relay.password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def send(relay: Relay, message: EmailMessage, *, ca_file: Path | None = None) -> None:
    """Hand `message` to the relay; returns only once the relay accepted it, raises one of SEND_ERRORS."""
    smtp = connect(relay, ca_file)
    try:
        smtp.send_message(message)
    finally:
        try:
            smtp.quit()
        except SEND_ERRORS:
            smtp.close()  # the message was accepted already; a rude goodbye changes nothing
