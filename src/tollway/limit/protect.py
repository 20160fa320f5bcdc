"""Protections of Tollway itself, all off unless configured:

- ``TOLLWAY_KEY_RATE_LIMIT`` (requests per second per API key): a generic cell rate algorithm
  (GCRA, a leaky bucket that stores one timestamp per key) allowing bursts of one second's worth
  of requests. In Redis (one Lua script, Redis' own clock) when ``TOLLWAY_REDIS_URL`` is set, so
  every process shares the budget; in the process otherwise, or while Redis cannot be reached.
- Customer-scoped ingest keys: a key created with ``--customer acme`` may send events only for
  ``acme`` (others get a per-event error) and check only ``acme``'s limits.
- ``TOLLWAY_LATE_EVENT_DAYS=N``: an event whose billing period was invoiced more than N days ago
  is refused with a per-event error, instead of becoming an adjustment on the next invoice.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, text
from starlette.requests import Request

from tollway.errors import TollwayError
from tollway.event.ingest import IncomingEvent
from tollway.limit.counters import as_utc
from tollway.meter.sql import dialect_for

log = logging.getLogger("tollway.limit")

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return tostring(wait) end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil((next_tat - now) * 1000) + 1000)
return '0'
"""


class KeyRateLimiter:
    """At most ``rate`` requests per second per key, with bursts up to ``rate`` requests."""

    def __init__(self, rate: float, *, redis_url: str | None = None, prefix: str = "tollway") -> None:
        if rate <= 0:
            raise ValueError("TOLLWAY_KEY_RATE_LIMIT must be > 0 (requests per second)")
        self.interval = 1.0 / rate
        self.tolerance = self.interval * (max(rate, 1.0) - 1.0)
        self.prefix = prefix
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._script: Any = None
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._script = client.register_script(_GCRA)

    @property
    def shared(self) -> bool:
        """The budget lives in Redis (shared by every process)."""
        return self._script is not None

    def hit(self, key_id: str) -> float:
        """Seconds to wait before this key may be served; 0 when it may be served now."""
        if self._script is not None:
            try:
                return float(self._script(keys=[f"{self.prefix}|rate|{key_id}"], args=[self.interval, self.tolerance]))
            except Exception as exc:  # Redis down: the process keeps a budget of its own
                log.warning("key rate limit: Redis unreachable (%s); limiting in this process", exc)
        return self._local(key_id)

    def _local(self, key_id: str) -> float:
        now = time.monotonic()
        with self._lock:
            tat = max(self._tats.get(key_id, now), now)
            wait = tat - self.tolerance - now
            if wait > 0:
                return wait
            if len(self._tats) > 100_000:
                self._tats.clear()
            self._tats[key_id] = tat + self.interval
        return 0.0


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


async def key_rate_limit(request: Request, principal: Any) -> None:
    """Admission hook (``auth.gate``): 429 for an API key over ``TOLLWAY_KEY_RATE_LIMIT``, before
    its request body is read. Other principals (portal sessions, signed webhooks) pass."""
    limiter: KeyRateLimiter | None = request.app.state.key_rate_limiter
    key_id = getattr(principal, "key_id", None)
    if limiter is None or key_id is None:
        return
    # A Redis round trip blocks: off the event loop then; the in-process budget is a dict update.
    wait = await run_in_threadpool(limiter.hit, key_id) if limiter.shared else limiter.hit(key_id)
    if wait > 0:
        raise TollwayError(
            "too many requests for this API key (TOLLWAY_KEY_RATE_LIMIT)",
            status=429,
            code="rate_limited",
            headers={"Retry-After": retry_after(wait)},
        )


def other_customers(events: Sequence[IncomingEvent], customer: str) -> dict[str, tuple[str, str]]:
    """Events a key scoped to ``customer`` may not send."""
    message = f"this API key may only send events for customer '{customer}'"
    return {e.id: ("customer", message) for e in events if e.customer != customer}


def late_events(
    engine: Engine, events: Sequence[IncomingEvent], *, now: datetime, days: int
) -> dict[str, tuple[str, str]]:
    """Events whose billing period was invoiced more than ``days`` days before ``now``."""
    if not events:
        return {}
    cutoff = now - timedelta(days=days)
    d = dialect_for(engine.dialect.name)
    sql = (
        "SELECT customer_id, period_start, period_end, issued_at FROM invoices "
        f"WHERE customer_id {d.in_list(sorted({e.customer for e in events}), 'text')} "
        f"AND issued_at < {d.bind(d.ts(cutoff))} AND period_end > {d.bind(d.ts(min(e.timestamp for e in events)))} "
        "AND status <> 'void'"
    )
    with engine.connect() as conn:
        rows = conn.execute(text(sql), d.params).all()
    if not rows:
        return {}
    invoiced: dict[str, list[tuple[datetime, datetime, datetime]]] = {}
    for customer, start, end, issued in rows:
        invoiced.setdefault(customer, []).append((as_utc(start), as_utc(end), as_utc(issued)))
    out: dict[str, tuple[str, str]] = {}
    for e in events:
        for start, end, issued in invoiced.get(e.customer, ()):
            if start <= e.timestamp < end:
                message = (
                    f"falls in the billing period {start.isoformat()} to {end.isoformat()}, invoiced on "
                    f"{issued.date().isoformat()}, more than {days} days ago (TOLLWAY_LATE_EVENT_DAYS)"
                )
                out[e.id] = ("timestamp", message)
                break
    return out
