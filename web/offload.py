"""Running password hashing off the event loop, a bounded number at a time.

argon2 releases the GIL, so one hash per core runs truly in parallel; more would only queue inside the
kernel while holding 64 MiB each. Requests beyond the limit wait here, and the loop keeps serving pages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request

T = TypeVar("T")


def make_limiter(concurrency: int) -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(concurrency)


async def hashing(request: Request, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Call `fn(**kwargs)` in a worker thread under the app's hashing limiter."""
    limiter: anyio.CapacityLimiter = request.app.state.hash_limiter
    return await anyio.to_thread.run_sync(partial(fn, **kwargs), limiter=limiter)
