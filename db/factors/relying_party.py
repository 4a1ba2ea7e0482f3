"""Pure helpers for passkeys: who the relying party is, and what to call a new passkey."""

from __future__ import annotations

import ipaddress
import unicodedata
from urllib.parse import urlsplit

NAME_MAX = 64
DEFAULT_NAME = "Passkey"
# Bidirectional overrides can make a name read as another ("Trojan Source"); joiners in emoji stay allowed.
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# A few well-known providers, from the community list passkeydeveloper/passkey-authenticator-aaguids.
PROVIDERS = {
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
    "dd4ec289-e01d-41c9-bb89-70fa845d4bf2": "iCloud Keychain",
    "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
    "9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
    "6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
    "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
    "53414d53-554e-4700-0000-000000000000": "Samsung Pass",
    "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
    "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
    "531126d6-e717-415c-9320-3d9aa6981239": "Dashlane",
}


def relying_party(public_url: str) -> tuple[str, str]:
    """(RP ID, origin) for the address members reach the app at, e.g. https://chat.example.com:8443 gives
    ("chat.example.com", "https://chat.example.com:8443"). WebAuthn needs a domain: an IP address can't be one."""
    parts = urlsplit(public_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("PUBLIC_URL must be an http:// or https:// URL")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ValueError("PUBLIC_URL must name a host (e.g. localhost), not an IP address: WebAuthn refuses IPs")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return host, f"{parts.scheme}://{host}{port}"


def provider_name(aaguid: str) -> str:
    """The name a new passkey gets unless the member gives one: its provider's, when the AAGUID is well known."""
    return PROVIDERS.get(aaguid.lower(), DEFAULT_NAME)


def clean_name(raw: str) -> str | None:
    """The name with outer spaces removed if it is 1–64 characters with no control characters or bidi overrides."""
    name = raw.strip()
    if not 1 <= len(name) <= NAME_MAX:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS for ch in name):
        return None
    return name
