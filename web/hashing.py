"""The password-hash pool: a few threads of its own (HASH_CONCURRENCY per worker) that run at a lower CPU
priority than the event loop.

argon2id costs about 40 ms of CPU per hash. Bounding how many run at once keeps memory in check, but on a
busy core a running hash still competes with the event loop for CPU time, so the cheap requests the loop
serves (a second step, a page) wait behind other members' password checks. On Linux each pool thread raises
its own nice value (always permitted, unlike lowering it), so the scheduler gives the loop the core first and
the hashes the rest; a hash is slowed, never starved (nice 10 still gets about a tenth of a busy core).
A ThreadPoolExecutor rather than anyio's shared pool: a thread's priority is its own, so hashing needs
threads that do nothing else.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
NICENESS = 10  # added to the worker's own nice value for hashing threads


def lower_priority(by: int = NICENESS) -> None:
    """Make the calling thread nicer by `by` (Linux: nice values are per thread). Elsewhere, nothing."""
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
    except OSError:  # a sandbox that forbids it: hashing still works, only without the priority
        pass


class HashPool:
    """`await pool.run(fn)`: `fn` (a service that hashes a password) in one of `size` low-priority threads;
    callers beyond `size` wait their turn without holding a thread."""

    def __init__(self, size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="argon2", initializer=lower_priority)

    async def run(self, fn: Callable[[], T]) -> T:
        context = contextvars.copy_context()  # as anyio does: the service sees the request's context vars
        return await asyncio.get_running_loop().run_in_executor(self._executor, context.run, fn)
