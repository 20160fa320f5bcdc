from __future__ import annotations

import pytest

from tests.portal._world import World, seed


@pytest.fixture
def world(api) -> World:  # type: ignore[no-untyped-def]
    return seed(api)
