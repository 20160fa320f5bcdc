from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer, start_server
from tests.portal._world import World, seed


@pytest.fixture
def world(api) -> World:  # type: ignore[no-untyped-def]
    return seed(api)


@pytest.fixture
def portal_server(db_url: str) -> Iterator[tuple[LiveServer, httpx.Client]]:
    """A real ``tollway serve`` with the portal world seeded, and an admin client for it."""
    server = start_server(db_url)
    try:
        key = server.cli("keys", "create", "--scope", "admin").strip().splitlines()[-1]
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:
            yield server, admin
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
