"""Limits on the provider's side: ``client.check(customer, meter, quantity)`` and the decision
cache the middlewares consult when ``enforce_limits=True``.

- :meth:`LimitChecker.check` asks ``POST /v1/limits/check`` and returns a :class:`Decision`.
  If Tollway cannot be reached (or answers an error), the decision is *allowed* with reason
  ``"unreachable"`` — fail-open — unless the client was made with ``fail_open=False``.
- :meth:`LimitChecker.decide` is what a middleware calls for every request: a decision per
  customer, cached for at most ``cache_ttl`` seconds (1 s by default). A customer without any
  limit is answered from the cache and refreshed in the background, so its requests never wait
  on Tollway after the first one; a customer with limits is checked again once the cached
  decision is older than ``cache_ttl``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx

from tollway_sdk import __version__
from tollway_sdk._log import Throttle

__all__ = ["Decision", "LimitChecker"]

MAX_CACHED_CUSTOMERS = 100_000


@dataclass(frozen=True)
class Decision:
    """Tollway's answer: may the customer go on? ``limits`` as the server reported them."""

    allowed: bool
    reason: str | None = None
    limits: tuple[Mapping[str, Any], ...] = ()
    checked_at: float = field(default_factory=time.monotonic)

    @property
    def unlimited(self) -> bool:
        """No limit applies to the customer (or Tollway was not reached)."""
        return self.allowed and not self.limits

    def retry_after(self, now: datetime | None = None) -> int:
        """Whole seconds until the limits that refuse the request reset (at least 1)."""
        now = now or datetime.now(timezone.utc)
        waits = []
        for limit in self.limits:
            if limit.get("action") != "block" or Decimal(str(limit.get("remaining", "1"))) > 0:
                continue
            try:
                resets = datetime.fromisoformat(str(limit["resets_at"]).replace("Z", "+00:00"))
            except (KeyError, ValueError):
                continue
            waits.append((resets - now).total_seconds())
        return max(1, int(max(waits, default=1) + 0.999))

    def problem(self) -> dict[str, Any]:
        """The 429 body (RFC 9457 problem+json). A prepaid customer out of credits
        (``credits_exhausted``) gets a problem of its own type: no limit refused it."""
        if self.reason == "credits_exhausted":
            kind, detail = "credits_exhausted", "prepaid credits exhausted: a top-up lets the requests through again"
        else:
            blocking = [x for x in self.limits if x.get("action") == "block"]
            shown = ", ".join(
                f"{x.get('meter')} ({x.get('used')} of {x.get('max')} per {x.get('window')})" for x in blocking
            )
            kind = "limit_reached"
            detail = f"usage limit reached: {shown}" if shown else f"refused by Tollway ({self.reason})"
        return {
            "type": f"urn:tollway:problem:{kind}",
            "title": "Too Many Requests",
            "status": 429,
            "detail": detail,
            "reason": self.reason,
            "limits": list(self.limits),
        }


def _quantity(value: int | str | Decimal) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise TypeError("quantity must be an int, a decimal string or a Decimal (never a float)")
    return str(value)


class LimitChecker:
    """Checks of one :class:`~tollway_sdk.Client` (same server and key). Thread-safe."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 1.0,
        cache_ttl: float = 1.0,
        fail_open: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 0 < cache_ttl <= 1.0:
            raise ValueError("cache_ttl must be > 0 and at most 1 second")
        self.endpoint = f"{base_url.rstrip('/')}/v1/limits/check"
        self.cache_ttl = cache_ttl
        self.fail_open = fail_open
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": f"tollway-sdk-python/{__version__}",
            },
        )
        self._cache: dict[tuple[str, str | None], Decision] = {}
        self._refreshing: set[tuple[str, str | None]] = set()
        self._lock = threading.Lock()
        self._throttle = Throttle()
        self.checks = 0  # HTTP checks made (for tests and benchmarks)

    def close(self) -> None:
        self._http.close()

    # -- one check ----------------------------------------------------------------------
    def check(self, customer: str, meter: str | None = None, quantity: int | str | Decimal = 1) -> Decision:
        """Ask Tollway now (no cache). Never raises for a network or server problem."""
        body: dict[str, Any] = {"customer": customer, "quantity": _quantity(quantity)}
        if meter is not None:
            body["meter"] = meter
        self.checks += 1
        try:
            response = self._http.post(self.endpoint, json=body)
        except httpx.HTTPError as exc:
            return self._unreachable(f"Tollway unreachable: {exc}")
        if response.status_code != 200:
            return self._unreachable(f"limits check answered {response.status_code}: {response.text[:200]}")
        try:
            doc = response.json()
            return Decision(bool(doc["allowed"]), doc.get("reason"), tuple(doc.get("limits") or ()))
        except (ValueError, KeyError, TypeError) as exc:
            return self._unreachable(f"limits check answered something else than a decision: {exc}")

    def _unreachable(self, message: str) -> Decision:
        self._throttle.log("limits-check", 30, "Tollway SDK: %s; request %s", message,
                           "allowed (fail-open)" if self.fail_open else "refused (fail_open=False)")  # fmt: skip
        return Decision(self.fail_open, "unreachable")

    # -- cached decisions -----------------------------------------------------------------
    def cached(self, customer: str, meter: str | None = None) -> Decision | None:
        """The cached decision if it may still be used without asking; starts a background
        refresh of an expired decision for a customer without limits."""
        key = (customer, meter)
        hit = self._cache.get(key)
        if hit is None:
            return None
        if time.monotonic() - hit.checked_at < self.cache_ttl:
            return hit
        if hit.unlimited and hit.reason != "unreachable":
            self._refresh_in_background(key)
            return hit
        return None

    def decide(self, customer: str, meter: str | None = None) -> Decision:
        """A decision for one more request of ``customer``: cached, or asked and cached."""
        hit = self.cached(customer, meter)
        if hit is not None:
            return hit
        return self._store((customer, meter), self.check(customer, meter))

    def _store(self, key: tuple[str, str | None], decision: Decision) -> Decision:
        with self._lock:
            if len(self._cache) >= MAX_CACHED_CUSTOMERS:
                self._cache.clear()
            self._cache[key] = decision
        return decision

    def _refresh_in_background(self, key: tuple[str, str | None]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                self._store(key, self.check(*key))
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=refresh, name="tollway-sdk-limits", daemon=True).start()
