"""Fixtures for the browser tests: a live ``python -m web serve``, Chromium through Playwright, CSP-checked pages.

Tests mark themselves with ``@pytest.mark.e2e`` (the marker is declared in pyproject.toml).
Environment knobs: E2E_DATABASE_URL, E2E_REAUTH_WINDOW, E2E_APP_NAME (passed to the app), E2E_CHROMIUM
(browser binary, default /usr/bin/chromium), E2E_TIMEOUT_MS (Playwright default timeout, default 10000),
E2E_STARTUP_TIMEOUT (seconds to wait for /healthz, default 60), E2E_ARTIFACTS_DIR (failure screenshots).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from .support import CHROMIUM_ARGS, CHROMIUM_PATH, CspCollector, LiveServer, start_live_server

_SERVER_KEY = pytest.StashKey[LiveServer]()
_LOG_OFFSET_KEY = pytest.StashKey[int]()
_PAGE_FIXTURES = ("page", "page_nojs")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """One app server for the whole session (start-up and migrations are the slow part).

    Tests must therefore not depend on each other's data: use unique e-mail addresses per test.
    """
    data_dir = tmp_path_factory.mktemp("e2e-data")
    timeout = float(os.environ.get("E2E_STARTUP_TIMEOUT", "60"))
    try:
        server = start_live_server(data_dir, startup_timeout=timeout)
    except RuntimeError as exc:
        failure = str(exc)
    else:
        failure = ""
    if failure:  # outside the except block, so the report is not doubled by exception chaining
        pytest.fail(f"live server did not start: {failure}", pytrace=False)
    request.config.stash[_SERVER_KEY] = server
    try:
        yield server
    finally:
        server.stop()
        del request.config.stash[_SERVER_KEY]


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


def _open_page(browser: Browser, request: pytest.FixtureRequest, *, javascript: bool) -> Generator[Page, None, None]:
    """Fresh context (no shared cookies between tests) whose CSP violations fail the test at teardown."""
    base_url = None
    if "live_server" in request.fixturenames:
        base_url = request.getfixturevalue("live_server").url
    context = browser.new_context(
        java_script_enabled=javascript,
        base_url=base_url,
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(float(os.environ.get("E2E_TIMEOUT_MS", "10000")))
    page = context.new_page()
    collector = CspCollector().attach(page)
    # Tests read (or, when provoking a violation on purpose, clear) this list.
    page.csp_violations = collector.messages  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
    if collector.messages:
        pytest.fail("Content Security Policy violations:\n" + "\n".join(collector.messages), pytrace=False)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Generator[Page, None, None]:
    """A JavaScript-enabled page; ``page.goto('/path')`` is relative to the live server when one is used."""
    yield from _open_page(browser, request, javascript=True)


@pytest.fixture
def page_nojs(browser: Browser, request: pytest.FixtureRequest) -> Generator[Page, None, None]:
    """A page with JavaScript disabled, to check the no-JS (progressive enhancement) path."""
    yield from _open_page(browser, request, javascript=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the server output of this test and a screenshot of each open page to the report."""
    report: pytest.TestReport = yield
    server = item.config.stash.get(_SERVER_KEY, None)
    if server is not None and call.when == "setup":
        item.stash[_LOG_OFFSET_KEY] = server.log_size()
    if report.failed and call.when == "call":
        _attach_screenshots(item, report)
    if report.failed and server is not None and "live_server" in getattr(item, "fixturenames", ()):
        since = item.stash.get(_LOG_OFFSET_KEY, 0)
        report.sections.append(("live server output", server.log_tail(since=since) or "(empty)"))
    return report


def _attach_screenshots(item: pytest.Item, report: pytest.TestReport) -> None:
    """Screenshot each still-open page of a failed test (fixtures are not torn down yet at this point)."""
    artifacts = Path(os.environ.get("E2E_ARTIFACTS_DIR") or Path(tempfile.gettempdir()) / "chat360-e2e-artifacts")
    stem = re.sub(r"[^\w.-]+", "_", item.nodeid)
    for name in _PAGE_FIXTURES:
        page = getattr(item, "funcargs", {}).get(name)
        if page is None or page.is_closed():
            continue
        shot = artifacts / f"{stem}-{name}.png"
        try:
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=shot, full_page=True)
            report.sections.append((f"{name} at failure", f"url: {page.url}\nscreenshot: {shot}"))
        except Exception as exc:  # the page may be mid-navigation; the failure report matters more
            report.sections.append((f"{name} at failure", f"url: {page.url}\nscreenshot failed: {exc}"))
