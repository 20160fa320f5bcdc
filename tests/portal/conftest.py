from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, start_server
from tests.portal._world import World, seed


@pytest.fixture
def world(api) -> World:  # type: ignore[no-untyped-def]
    return seed(api)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium():  # type: ignore[no-untyped-def]
    """Debian's Chromium driven by Playwright. Under CI a missing browser fails the run (never a
    skip): ``.ci/run`` installs it. Module-scoped: Playwright's sync API runs an event loop in
    this thread while it is open, which ``asyncio.run()`` in later tests must not find."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def portal_server(db_url: str, api) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """A real ``tollway serve`` on the test database; seed it with the in-process ``api`` client
    (same database), which returns only after its transaction committed."""
    server = start_server(db_url)
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
