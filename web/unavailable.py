"""The database went away: a clean 503 with a retry hint instead of a 500.

Raised when the server dropped the connection a request was using (SQLAlchemy flags the error
`connection_invalidated` and the pool reconnects for the next request) or when no connection can be made
at all (an OperationalError while the server restarts). Other database errors are bugs and stay 500s.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.requests import Request
from starlette.responses import Response

from db.i18n import _
from web.errors import error_response

log = logging.getLogger("chat360.db")
RETRY_AFTER = "5"  # seconds: long enough for a restart to finish, short enough that nobody gives up
MESSAGE = _("The service is briefly unavailable. Please try again in a few seconds.")


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """Registered for DBAPIError; anything that is not a lost database goes on to the 500 handler."""
    if not is_unavailable(exc):
        raise exc
    orig = getattr(exc, "orig", None) or exc
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, type(orig).__name__)
    response = error_response(request, 503, MESSAGE)
    response.headers["Retry-After"] = RETRY_AFTER
    return response
