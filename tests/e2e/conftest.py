"""A real headless Chromium (the system's, never a downloaded one) for driving the pages, the worker they need
and the FCM emulator it sends to, and the staff sign-in."""
from __future__ import annotations

from pathlib import Path

import pytest

from alerts.push.emulator import FcmEmulator
from tests.support import start_process, stop_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}  # the care team's laptops


@pytest.fixture(scope="module")
def playwright_driver():
    """Playwright's sync driver runs an event loop of its own: it must be stopped before any later test
    module calls asyncio.run(), so it lives for one module only."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)")
    with sync_api.sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser_context(playwright_driver, tmp_path):
    """A fresh browser profile (its own user-data-dir), closed after the test."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport=VIEWPORT, locale="en-US", timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    """A tab whose console errors and uncaught exceptions are collected in ``page.problems``."""
    tab = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    problems: list[str] = []
    tab.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    tab.problems = problems
    return tab


@pytest.fixture(scope="module")
def fcm():
    """FCM's HTTP v1 API, locally: the worker's real firebase-admin sends here."""
    with FcmEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def worker(service, fcm):
    process = start_process(service, "worker", BEIDOU_FCM_ENDPOINT=fcm.url, BEIDOU_FCM_PROJECT_ID="e2e")
    yield process
    stop_process(process)


def sign_in(page, token: str) -> None:
    """Sign in on the care or outcomes page with a staff token."""
    page.locator("#token-input").fill(token)
    page.locator("#login-button").click()
