from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, start_server, stop_server
from tests.portal._world import World, fire_alerts, seed


@pytest.fixture
def world(api, session_factory) -> World:  # type: ignore[no-untyped-def]
    world = seed(api)
    assert fire_alerts(session_factory) == 3  # acme: 50 % and 100 %; globex: 100 %
    return world


@pytest.fixture
def portal_server(db_url: str, api) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """A real ``tollway serve`` on the test database; seed it with the in-process ``api`` client
    (same database), which returns only after its transaction committed. Its worker rolls new
    events up every half second, so the world's alerts fire soon after it is seeded."""
    server = start_server(db_url, extra_env={"TOLLWAY_ROLLUP_INTERVAL_SECONDS": "0.5"})
    try:
        yield server
    finally:
        stop_server(server)
