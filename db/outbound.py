"""Outbound URLs that cannot reach inside: the rule a webhook URL must pass when it is saved, and again when
a delivery connects (db/delivery.py), so a name whose DNS answer turned internal is refused then too.

Only addresses the stdlib `ipaddress` module calls global are allowed; names are resolved, and every
address of the answer must pass (an attacker's DNS may answer one public and one private address).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from db.errors import InvalidInput
from db.i18n import N_, _

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

HTTPS_ONLY = N_("Enter an https:// URL, like https://example.com/hooks/chat360.")
INSIDE = N_("This address points inside our network (%(detail)s). Use a public address.")
NOT_FOUND = N_("We couldn't find the host %(host)s. Check the address, or try again later.")
PUBLIC_NAME = N_("Use a public host name, like hooks.example.com.")
# Names that never belong to the public DNS (RFC 6761, RFC 6762, RFC 8375 and the ICANN .internal TLD).
LOCAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa", "lan", "intranet", "corp")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(InvalidInput):
    """The URL, or what its name resolves to, is not a public https endpoint."""

    def __init__(self, message: str) -> None:
        super().__init__("url", message)


@dataclass(frozen=True)
class Target:
    """A checked URL: the name to send as SNI and Host, and the public addresses it may be reached at."""

    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (A and AAAA), in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def literal_address(host: str) -> Address | None:
    """The address `host` spells, also in the forms inet_aton accepts (2130706433, 0x7f.1, 0177.0.0.1, 127.1),
    which resolvers and HTTP clients honour too. None for a host name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if not host[:1].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def why_internal(address: Address) -> str | None:
    """What makes an address unsuitable for an outbound request, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return why_internal(embedded)
    for reason in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{reason}"):
            return reason.replace("_", "-")
    return None if address.is_global else "not global"


def check_address(address: str) -> None:
    """Raise Refused unless `address` (as a resolver gives it, maybe with an IPv6 zone) is public."""
    reason = why_internal(ipaddress.ip_address(address.split("%")[0]))
    if reason is not None:
        raise Refused(_(INSIDE, detail=reason))


def check_name(host: str) -> None:
    """Refuse names that only mean something on the local network: these never reach the public DNS."""
    name = host.rstrip(".")
    if any(name == suffix or name.endswith("." + suffix) for suffix in LOCAL_SUFFIXES):
        raise Refused(_(INSIDE, detail=name))
    if "." not in name:
        raise Refused(_(PUBLIC_NAME))  # a bare label is completed by the resolver's search domains


def parse(url: str) -> tuple[str, int, str]:
    """The host (IDNA, lower case), port and path of an https URL without credentials, or Refused."""
    try:
        parts = urlsplit(url) if len(url) <= 500 else None
        port = parts.port if parts else None
        host = parts.hostname.encode("idna").decode("ascii") if parts and parts.hostname else ""
    except (ValueError, UnicodeError) as exc:
        raise Refused(_(HTTPS_ONLY)) from exc
    if parts is None or parts.scheme != "https" or not host or parts.username or parts.password:
        raise Refused(_(HTTPS_ONLY))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host.lower(), port or 443, path


def resolve(host: str, port: int, resolver: Resolver) -> tuple[str, ...]:
    """The addresses of `host`, every one checked; a literal address is its own answer."""
    literal = literal_address(host)
    if literal is not None:
        check_address(str(literal))
        return (str(literal),)
    check_name(host)
    try:
        addresses = tuple(resolver(host, port))
    except (OSError, UnicodeError) as exc:  # socket.gaierror, a timeout, an unencodable name
        raise Refused(_(NOT_FOUND, host=host)) from exc
    if not addresses:
        raise Refused(_(NOT_FOUND, host=host))
    for address in addresses:
        check_address(address)
    return addresses


def check_url(url: str, *, resolver: Resolver = system_resolver) -> Target:
    """The checked target of a webhook URL. Raises Refused (a field error on `url`) with a clear message."""
    host, port, path = parse(url.strip())
    return Target(host=host, port=port, path=path, addresses=resolve(host, port, resolver))
