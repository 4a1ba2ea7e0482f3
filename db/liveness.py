"""Noticing, at checkout and without a round trip, that the server dropped a pooled connection.

An idle pooled connection has nothing to read: the server speaks only when asked. If its socket is readable
anyway, the server has closed it or sent a FATAL message (`pg_terminate_backend`, a restart, an idle
timeout), so the pool throws it away and opens another; SQLAlchemy retries the checkout once. One poll()
with a zero timeout costs a system call, where `pool_pre_ping` would cost a round trip on every checkout.
The rare false alarm (an asynchronous notice on a live connection) only costs a reconnect.
"""

from __future__ import annotations

import select

from sqlalchemy.exc import DisconnectionError


def drop_if_dead(dbapi_connection: object, _record: object, _proxy: object) -> None:
    """Pool "checkout" listener: raise DisconnectionError so the pool replaces a connection the server dropped."""
    if is_dropped(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")


def is_dropped(dbapi_connection: object) -> bool:
    """Closed on our side, or readable (EOF or an unsolicited FATAL) while idle."""
    if getattr(dbapi_connection, "closed", False):
        return True
    try:
        fd = dbapi_connection.fileno()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - psycopg raises once the connection is closed
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))
