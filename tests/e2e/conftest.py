"""End-to-end fixtures: the dashboard served the real way (gunicorn + the emulator as subprocesses on
free loopback ports) and a headless Debian Chromium driven by pytest-playwright.

Reusable by every e2e test module (see docs/browse.md):

* ``dashboard_server`` (session): a running dashboard with ``DASHBOARD_AUTH=none``; a
  :class:`DashboardServer` with ``.url``, ``.emulator_url``, ``.emulator_api_key`` and helpers for the
  emulator's control endpoints (``advance``, ``stats``, ``reset_counts``, ``add_fault``,
  ``clear_faults``, ``upstream``).
* ``start_dashboard(tmp_dir, extra_env=...)`` (``tests/e2e/helpers.py``): a context manager for another configuration (e.g. a
  module-scoped server with ``DASHBOARD_AUTH=proxy``).
* ``guarded_page``: pytest-playwright's ``page`` that aborts and records any request leaving
  127.0.0.1 and records console errors (CSP violations are console errors in Chromium) and uncaught
  exceptions; the test fails at teardown if any happened.
* ``browser_type_launch_args`` / ``browser_context_args`` overrides: Debian's Chromium at
  /usr/bin/chromium (``playwright install`` cannot download here) and a 1440×900 viewport.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import CHROMIUM, LOOPBACK_HOSTS, SCREENSHOTS, DashboardServer, start_dashboard

# Sync Playwright runs an event loop in the main thread; pytest-django must not refuse ORM use there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory) -> Iterator[DashboardServer]:
    """The dashboard (DASHBOARD_AUTH=none, poll every 1 s) and its emulator, for the whole session."""
    with start_dashboard(tmp_path_factory.mktemp("dashboard")) as server:
        yield server


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory) -> Path:
    """Where the e2e suite writes its PNGs. The README's (docs/screenshots/, committed) are refreshed
    only on request, ``UPDATE_SCREENSHOTS=1 scripts/test tests/e2e``, so a test run leaves the working
    tree clean (the relative times in them change on every run)."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@dataclass
class PageGuard:
    external_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest.fixture
def page_guard() -> PageGuard:
    return PageGuard()


@pytest.fixture
def guarded_page(page, page_guard):
    """``page`` that never lets a request leave loopback, and fails the test on console errors."""

    def route(route):
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:", "about:")) or host in LOOPBACK_HOSTS:
            route.continue_()
        else:
            route.abort()  # recorded by on_request, which sees every request, routed or not

    def on_request(request):
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith("http") and host not in LOOPBACK_HOSTS:
            page_guard.external_requests.append(request.url)

    page.route("**/*", route)
    page.on("request", on_request)
    page.on("console", lambda msg: msg.type == "error" and page_guard.console_errors.append(msg.text))
    page.on("pageerror", lambda err: page_guard.page_errors.append(str(err)))
    yield page
    assert page_guard.external_requests == [], "requests left 127.0.0.1"
    assert page_guard.console_errors == [], "console errors (CSP violations show up here)"
    assert page_guard.page_errors == [], "uncaught JavaScript errors"
