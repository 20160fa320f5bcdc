from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, start_server, stop_server
from tests.portal._world import World, seed


@pytest.fixture
def world(api) -> World:  # type: ignore[no-untyped-def]
    return seed(api)


@pytest.fixture
def portal_server(db_url: str, api) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """A real ``tollway serve`` on the test database; seed it with the in-process ``api`` client
    (same database), which returns only after its transaction committed."""
    server = start_server(db_url)
    try:
        yield server
    finally:
        stop_server(server)
