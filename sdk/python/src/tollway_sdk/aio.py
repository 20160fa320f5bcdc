"""asyncio front end for :class:`tollway_sdk.Client`.

Delivery stays on the client's own background thread (with its own blocking
HTTP connection), so it never competes with the event loop and works the same
whichever loop, or how many loops, the application runs. What asyncio code
needs is an awaitable ``flush``/``close`` and the guarantee that ``track`` does
not block: ``track`` only serialises the event and appends it to an in-memory
queue under a lock that is held for microseconds, never across I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollway_sdk.client import Client, Stats
from tollway_sdk.limits import Decision, LimitChecker

__all__ = ["AsyncClient"]


class AsyncClient:
    """Same constructor arguments as :class:`Client`; ``await`` flush and close."""

    def __init__(self, base_url: str, api_key: str, **options: Any) -> None:
        self.client = Client(base_url, api_key, **options)

    @property
    def stats(self) -> Stats:
        return self.client.stats

    def track(
        self,
        customer: str,
        type: str,
        properties: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> str | None:
        """Non-blocking; safe to call from a coroutine. See :meth:`Client.track`."""
        return self.client.track(customer, type, properties, id=id, timestamp=timestamp)

    @property
    def limits(self) -> LimitChecker:
        return self.client.limits

    async def check(self, customer: str, meter: str | None = None, quantity: int | str | Decimal = 1) -> Decision:
        """:meth:`Client.check` off the event loop."""
        return await asyncio.to_thread(self.client.check, customer, meter, quantity)

    async def flush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.client.flush, timeout)

    async def aclose(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.client.close, timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
