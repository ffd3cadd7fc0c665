"""Fixtures for the browser tests: one Spawnpoint stack with the storefront for the module, and Debian's
Chromium driven by Playwright (never a browser Playwright downloads: ``scripts/ensure-tools.sh`` installs
``chromium`` where it is missing).

Every test gets a fresh browser context (its own storage: a new customer) and saves a screenshot under
``.run/artifacts/browser/`` (ignored by git), printed at the end of the run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from devstack import ROOT, Stack, StackConfig, drop_databases, drop_namespace

CHROMIUM = Path(os.environ.get("SPAWNPOINT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / ".run" / "artifacts" / "browser"
LOG_ROOT = ROOT / ".run" / "test-logs"
FAST_PROVISIONER = {
    "INSTALL_POLL_SECONDS": "0.5",
    "INSTALL_MAX_INTERVAL_SECONDS": "1",
    "INSTALL_DEADLINE_SECONDS": "30",
    "RELAY_POLL_SECONDS": "0.2",
}
"""The install watcher looks often, so the page sees each phase within a second."""

T = TypeVar("T")


def eventually_sync(probe: Callable[[], T | None], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy, to a deadline (never a fixed wait)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Shop:
    """The running stack as the tests reach it: the storefront's address and the stand-ins' controls."""

    stack: Stack
    http: httpx.Client

    def url(self, name: str, path: str = "") -> str:
        return self.stack.config.url(name) + path

    @property
    def storefront(self) -> str:
        return self.url("storefront")

    def control(self, name: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, self.url(name, path), json=body)
        assert response.status_code < 400, response.text
        return response.json()


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    run_id = uuid.uuid4().hex[:8]
    config = StackConfig.for_tests(run_id, LOG_ROOT / run_id, panel_args=["--install-seconds", "2"])
    storefront = config.url("storefront")
    config.extra_env.update(
        {
            "DB_POOL_SIZE": "3",
            "CHECKOUT_RETURN_URL": f"{storefront}/checkout/return?session_id={{CHECKOUT_SESSION_ID}}",
            "BILLING_PORTAL_RETURN_URL": f"{storefront}/account",
        }
    )
    config.per_process_env = {
        "storefront": {"STOREFRONT_TEST_CONTROLS": "true"},
        # Delayed payments settle when a test says so (the automatic delay is the stand-in's own test).
        "stripe-fake": {"STRIPE_FAKE_EMBEDDED_SETTLE_SECONDS": "0"},
        "provisioner": dict(FAST_PROVISIONER),
    }
    stack = Stack(config)
    try:
        stack.start((*Stack.ORDER, "storefront"))
        with httpx.Client(timeout=15.0) as http:
            yield Shop(stack, http)
    finally:
        stack.stop()
        if not os.environ.get("SPAWNPOINT_KEEP_TEST_DATA"):
            drop_databases(config)
            drop_namespace(config)


expect.set_options(timeout=30_000)  # the stack answers in seconds, on a machine shared with other suites


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's outcome on the test, so the screenshot check runs only for a passed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-tools.sh (installs Debian's chromium package)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # launch() gives every run a fresh temporary profile (user-data dir), removed when the browser closes.
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, shop: Shop) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB", base_url=shop.storefront)
    context.set_default_timeout(30_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``screenshot(page, name)`` saves ``.run/artifacts/browser/<test>-<name>.png``; the test must take one."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    def take(page: Page, name: str, *, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        taken.append(path)
        return path

    yield take
    call = getattr(request.node, "report_call", None)
    if call is not None and call.passed:
        assert taken, "every browser test saves a screenshot"
    for path in taken:
        print(f"screenshot: {path.relative_to(ROOT)}")
