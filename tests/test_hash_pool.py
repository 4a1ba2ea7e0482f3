"""The password-hash pool (web/hashing.py): at most HASH_CONCURRENCY hashes at once, in threads that run at a
lower CPU priority than the event loop, so cheap requests don't wait behind argon2 on a busy core."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from db import i18n
from web.hashing import NICENESS, HashPool

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps a loop running in this one."""
    with ThreadPoolExecutor(1) as runner:
        return runner.submit(asyncio.run, main()).result()


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_the_pool_runs_at_most_its_size_at_once() -> None:
    pool, running, most = HashPool(2), [0], [0]
    lock = threading.Lock()

    def work() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)  # a stand-in for a hash: long enough for the calls to overlap if they could
        with lock:
            running[0] -= 1

    async def main() -> None:
        await asyncio.gather(*(pool.run(work) for _ in range(6)))

    run(main)
    assert most[0] == 2


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_hashing_threads_are_nicer_than_the_event_loop() -> None:
    pool = HashPool(1)

    async def main() -> tuple[int, int, int]:
        return _nice(), await pool.run(_nice), _nice()

    loop_nice, hash_nice, after = run(main)
    assert hash_nice == min(19, loop_nice + NICENESS)
    assert after == loop_nice, "the event loop's own priority is left alone"


def test_the_service_sees_the_callers_context() -> None:
    pool = HashPool(1)

    async def main() -> str:
        i18n.ACTIVE.set("de")
        return await pool.run(i18n.ACTIVE.get)

    assert run(main) == "de"
