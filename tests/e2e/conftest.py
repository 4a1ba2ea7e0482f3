"""Fixtures for the browser tests: a live ``python -m web serve``, Chromium through Playwright, CSP-checked pages.

Tests mark themselves with ``@pytest.mark.e2e`` (the marker is declared in pyproject.toml).
Environment knobs: E2E_DATABASE_URL, E2E_REAUTH_WINDOW, E2E_APP_NAME (passed to the app), E2E_CHROMIUM
(browser binary, default /usr/bin/chromium), E2E_TIMEOUT_MS (Playwright default timeout, default 10000),
E2E_STARTUP_TIMEOUT (seconds to wait for /healthz, default 60), E2E_ARTIFACTS_DIR (failure screenshots).

With ``E2E_DATABASE_URL=postgresql+psycopg://...`` each live server gets a throwaway database of its own on
that PostgreSQL server (created at start, dropped at the end), never the database the URL names.

Servers: ``live_server`` (shared by most tests), ``stepup_server`` (``REAUTH_WINDOW=2``, for the step-up
tests) and ``policy_server`` (for the tests that switch on the org-wide MFA policy, which would otherwise
send every agent of the shared server to enrolment). Each starts only when a test asks for it; ``page``,
``page_nojs`` and the ``new_page`` factory (a second browser: another member, or the same member elsewhere)
use as ``base_url`` whichever of them the test requested.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from .flows import STEPUP_WINDOW
from .support import (
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    CspCollector,
    LiveServer,
    is_psycopg_url,
    start_live_server,
    throwaway_database,
)

_SERVERS_KEY = pytest.StashKey[dict[str, LiveServer]]()
_LOG_OFFSET_KEY = pytest.StashKey[dict[str, int]]()
_PAGE_FIXTURES = ("page", "page_nojs")
# The server fixtures, most specific first: a page's base_url is the first of these the test requested.
SERVER_FIXTURES = ("stepup_server", "policy_server", "live_server")


def _serve(
    name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, **env: str
) -> Iterator[LiveServer]:
    """Start one app server (on its own throwaway PostgreSQL database when asked) and stop it afterwards."""
    data_dir = tmp_path_factory.mktemp(f"e2e-{name}")
    timeout = float(os.environ.get("E2E_STARTUP_TIMEOUT", "60"))
    pg_url = os.environ.get("E2E_DATABASE_URL")
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(throwaway_database(pg_url)) if is_psycopg_url(pg_url) else None
        try:
            server = start_live_server(data_dir, startup_timeout=timeout, database_url=database_url, env_overrides=env)
        except RuntimeError as exc:
            failure = str(exc)
        else:
            failure = ""
        if failure:  # outside the except block, so the report is not doubled by exception chaining
            pytest.fail(f"{name} did not start: {failure}", pytrace=False)
        # Stop the server before its database is dropped (the ExitStack unwinds in reverse order).
        stack.callback(server.stop)
        servers = request.config.stash.setdefault(_SERVERS_KEY, {})
        servers[name] = server
        try:
            yield server
        finally:
            servers.pop(name, None)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """One app server for the whole session (start-up and migrations are the slow part).

    Tests must therefore not depend on each other's data: use unique e-mail addresses per test.
    """
    yield from _serve("live_server", tmp_path_factory, request)


@pytest.fixture(scope="session")
def stepup_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A second server whose re-authentication window is STEPUP_WINDOW seconds, for "Confirm it's you"."""
    yield from _serve("stepup_server", tmp_path_factory, request, REAUTH_WINDOW=str(STEPUP_WINDOW))


@pytest.fixture(scope="session")
def policy_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A server of its own for the org-wide MFA policy: switching it on must not reach other tests' agents."""
    yield from _serve("policy_server", tmp_path_factory, request)


def _base_url(request: pytest.FixtureRequest) -> str | None:
    for name in SERVER_FIXTURES:
        if name in request.fixturenames:
            return request.getfixturevalue(name).url
    return None


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver (session scope: starting it costs ~0.5 s)."""
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium: Playwright's own browser download is not reachable from this machine."""
    executable = os.environ.get("E2E_CHROMIUM", CHROMIUM_PATH)
    if not Path(executable).exists():
        pytest.fail(f"Chromium not found at {executable} (apt-get install chromium)", pytrace=False)
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


def _new_page(
    browser: Browser, base_url: str | None, *, javascript: bool, locale: str = "en-US"
) -> tuple[Page, CspCollector]:
    # Chromium sends the context's locale as Accept-Language.
    context = browser.new_context(
        java_script_enabled=javascript,
        base_url=base_url,
        locale=locale,
        timezone_id="UTC",
    )
    context.set_default_timeout(float(os.environ.get("E2E_TIMEOUT_MS", "10000")))
    page = context.new_page()
    collector = CspCollector().attach(page)
    # Tests read (or, when provoking a violation on purpose, clear) this list.
    page.csp_violations = collector.messages  # type: ignore[attr-defined]
    page.javascript_enabled = javascript  # type: ignore[attr-defined]  # axe_violations refuses no-JS pages
    return page, collector


def _fail_on_csp(collectors: list[CspCollector]) -> None:
    messages = [m for c in collectors for m in c.messages]
    if messages:
        pytest.fail("Content Security Policy violations:\n" + "\n".join(messages), pytrace=False)


def _open_page(browser: Browser, request: pytest.FixtureRequest, *, javascript: bool) -> Generator[Page, None, None]:
    """Fresh context (no shared cookies between tests) whose CSP violations fail the test at teardown."""
    page, collector = _new_page(browser, _base_url(request), javascript=javascript)
    try:
        yield page
    finally:
        page.context.close()
    _fail_on_csp([collector])


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Generator[Page, None, None]:
    """A JavaScript-enabled page; ``page.goto('/path')`` is relative to the live server when one is used."""
    yield from _open_page(browser, request, javascript=True)


@pytest.fixture
def page_nojs(browser: Browser, request: pytest.FixtureRequest) -> Generator[Page, None, None]:
    """A page with JavaScript disabled, to check the no-JS (progressive enhancement) path."""
    yield from _open_page(browser, request, javascript=False)


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Factory for more pages, each in its own context (another member, another browser of the same member).

    ``new_page(javascript=True, locale="en-US")`` (the locale is what the browser asks for in Accept-Language);
    closed and CSP-checked at teardown like ``page``.
    """
    opened: list[tuple[Page, CspCollector]] = []

    pages: list[Page] = []

    def make(*, javascript: bool = True, locale: str = "en-US") -> Page:
        opened.append(_new_page(browser, _base_url(request), javascript=javascript, locale=locale))
        pages.append(opened[-1][0])
        return pages[-1]

    make.opened = pages  # type: ignore[attr-defined]  # read by _attach_screenshots on failure
    try:
        yield make
    finally:
        for page, _ in opened:
            page.context.close()
    _fail_on_csp([collector for _, collector in opened])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the server output of this test and a screenshot of each open page to the report."""
    report: pytest.TestReport = yield
    servers = item.config.stash.get(_SERVERS_KEY, {})
    used = [name for name in SERVER_FIXTURES if name in getattr(item, "fixturenames", ()) and name in servers]
    if call.when == "setup":
        item.stash[_LOG_OFFSET_KEY] = {name: servers[name].log_size() for name in used}
    if report.failed and call.when == "call":
        _attach_screenshots(item, report)
    if report.failed:
        offsets = item.stash.get(_LOG_OFFSET_KEY, {})
        for name in used:
            output = servers[name].log_tail(since=offsets.get(name, 0)) or "(empty)"
            report.sections.append((f"{name.replace('_', ' ')} output", output))
    return report


def _attach_screenshots(item: pytest.Item, report: pytest.TestReport) -> None:
    """Screenshot each still-open page of a failed test (fixtures are not torn down yet at this point)."""
    artifacts = Path(os.environ.get("E2E_ARTIFACTS_DIR") or Path(tempfile.gettempdir()) / "chat360-e2e-artifacts")
    stem = re.sub(r"[^\w.-]+", "_", item.nodeid)
    funcargs = getattr(item, "funcargs", {})
    pages = [(name, funcargs.get(name)) for name in _PAGE_FIXTURES]
    factory = funcargs.get("new_page")
    for i, extra in enumerate(getattr(factory, "opened", ())):
        pages.append((f"new_page{i}", extra))
    for name, page in pages:
        if page is None or page.is_closed():
            continue
        shot = artifacts / f"{stem}-{name}.png"
        try:
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=shot, full_page=True)
            report.sections.append((f"{name} at failure", f"url: {page.url}\nscreenshot: {shot}"))
        except Exception as exc:  # the page may be mid-navigation; the failure report matters more
            report.sections.append((f"{name} at failure", f"url: {page.url}\nscreenshot failed: {exc}"))
