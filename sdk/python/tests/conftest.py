"""Fixtures: a fake Tollway server per test, and clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fake_tollway import FakeTollway
from tollway_sdk import Client


@pytest.fixture
def server() -> Iterator[FakeTollway]:
    fake = FakeTollway()
    yield fake
    fake.close()


@pytest.fixture
def make_client(server: FakeTollway) -> Iterator[Callable[..., Client]]:
    """Clients against the fake server, with fast backoff; closed at teardown."""
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        options.setdefault("backoff_base", 0.01)
        options.setdefault("backoff_max", 0.05)
        options.setdefault("flush_interval", 60.0)
        client = Client(options.pop("base_url", server.url), options.pop("api_key", "tw_test_key"), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=2.0)
