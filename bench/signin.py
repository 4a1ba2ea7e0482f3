"""The sign-in load: virtual users signing members in over HTTP, the four requests a browser makes.

`python bench/signin.py BASE MEMBERS.json SECONDS CONCURRENCY` prints one JSON line of latencies. The same
client code drives the app and the ceiling's sign-in (bench/bare_signin.py): both answer the same four
requests, and a flow that does not end signed in raises. A TOTP code is single use per member per 30 s
step, so each member is taken from a queue and only when their last sign-in was in an earlier step; the
code is computed (pyotp) just before the request that sends it. Each member sends their own
X-Forwarded-For (uvicorn trusts it from 127.0.0.1), as members behind a reverse proxy do, so the
per-address throttle counts per member as in production.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import sys
import time

import httpx2 as httpx  # the maintained fork of httpx, with the same API
import pyotp

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STEPS = ("GET /login", "POST /login", "GET /login/verify", "POST /login/verify")


def _token(response: httpx.Response) -> str:
    match = CSRF.search(response.text)
    if response.status_code != 200 or match is None:
        raise RuntimeError(f"{response.request.url}: {response.status_code}, not a form with a CSRF token")
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, member: dict[str, str], times: list[float]) -> None:
    """The real flow; appends each request's seconds to `times`. Raises unless it ends signed in."""
    started = time.perf_counter()
    page = await client.get("/login")
    times.append(time.perf_counter() - started)
    form = {"email": member["email"], "password": member["password"], "csrf_token": _token(page)}
    started = time.perf_counter()
    answer = await client.post("/login", data=form)
    times.append(time.perf_counter() - started)
    if answer.status_code != 303 or not answer.headers["location"].startswith("/login/verify"):
        raise RuntimeError(f"POST /login: {answer.status_code}")
    started = time.perf_counter()
    page = await client.get("/login/verify")
    times.append(time.perf_counter() - started)
    form = {"code": pyotp.TOTP(member["secret"]).now(), "csrf_token": _token(page)}
    started = time.perf_counter()
    answer = await client.post("/login/verify", data=form)
    times.append(time.perf_counter() - started)
    if answer.status_code != 303:
        raise RuntimeError(f"POST /login/verify: {answer.status_code}")


def _forwarded_for(index: int) -> str:
    return f"198.18.{index // 250}.{index % 250 + 1}"


Queue = collections.deque[tuple[int, dict[str, str], int]]  # (index, member, step of their last sign-in)


async def _user(base: str, queue: Queue, deadline: float, out: list[list[float]], idle: list[float]) -> None:
    """One virtual user: one keep-alive client, its cookies cleared between sign-ins (a fresh browser session).
    It idles only when every member has signed in during the current step (`idle`: the seconds it waited)."""
    async with httpx.AsyncClient(base_url=base, headers={"Origin": base}) as client:
        while time.monotonic() < deadline:
            index, member, step = queue.popleft()
            if step >= int(time.time()) // 30:
                queue.append((index, member, step))
                idle.append(0.01)
                await asyncio.sleep(0.01)
                continue
            client.cookies.clear()
            client.headers["X-Forwarded-For"] = _forwarded_for(index)
            times: list[float] = []
            await sign_in(client, member, times)
            out.append(times)
            queue.append((index, member, int(time.time()) // 30))


async def drive(base: str, members: list[dict[str, str]], seconds: float, concurrency: int) -> dict:  # type: ignore[type-arg]
    queue: Queue = collections.deque((i, m, 0) for i, m in enumerate(members))
    flows: list[list[float]] = []
    idle: list[float] = []
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(_user(base, queue, deadline, flows, idle) for _ in range(concurrency)))
    return {"seconds": time.perf_counter() - started, "flows": flows, "idle": sum(idle)}


def main() -> None:
    base, path, seconds, concurrency = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    members = json.loads(open(path).read())
    print(json.dumps(asyncio.run(drive(base, members, seconds, concurrency))))


if __name__ == "__main__":
    main()
