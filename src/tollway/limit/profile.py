"""A customer's limit profile: every limit that applies to it now, with what it takes to find the
window an event falls in. Pure: no database, no clock.

The profile is what counters are kept for. It is stored next to the counters (``counters.py``)
when they are seeded, and ingestion counts each stored event into the windows of the stored
profile; a check compares the stored profile's ``version`` (a hash of its content) with the
profile the subscriptions say now, and seeds the counters again from the events when they differ
(a subscription created, changed or cancelled, an override, the customer's time zone).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tollway.kit.periods import BillingCycle
from tollway.kit.time import get_zone, next_window_start, window_start


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return get_zone(name)


@lru_cache(maxsize=4096)
def _billing_cycle(interval: str, count: int, anchor: str, tz: str) -> BillingCycle:
    return BillingCycle(interval, count, anchor, _zone(tz))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Cycle:
    """A subscription's billing cycle and span: what a ``period`` window needs."""

    interval: str
    count: int
    anchor: str
    tz: str
    start: datetime
    ends_at: datetime | None

    def period_at(self, instant: datetime) -> tuple[datetime, datetime] | None:
        if instant < self.start or (self.ends_at is not None and instant >= self.ends_at):
            return None
        period = _billing_cycle(self.interval, self.count, self.anchor, self.tz).period_at(self.start, instant)
        end = period.end if self.ends_at is None else min(period.end, self.ends_at)
        return period.start, end


@dataclass(frozen=True)
class Entry:
    """One limit as it applies to the customer: a plan's limit with the subscription's override."""

    subscription: str
    meter: str
    window: str  # period | day | hour | minute
    max: Decimal
    action: str  # block | notify
    cycle: Cycle | None = None  # period windows only

    def bounds(self, instant: datetime, tz: str) -> tuple[datetime, datetime] | None:
        """The window ``[start, end)`` containing ``instant``; ``None`` when a ``period`` window
        is asked for an instant outside the subscription."""
        if self.window == "period":
            assert self.cycle is not None
            return self.cycle.period_at(instant)
        zone = _zone(tz)
        start = window_start(instant, self.window, zone)
        return start, next_window_start(start, self.window, zone)

    @property
    def counter(self) -> tuple[str, str, Cycle | None]:
        """Entries with the same counter identity count the same events into the same windows."""
        return self.meter, self.window, self.cycle


@dataclass(frozen=True)
class Profile:
    customer: str
    tz: str
    entries: tuple[Entry, ...]
    version: str = field(default="")  # a hash of the content
    key_version: str = field(default="", compare=False)  # the stored counters' key space (Redis)

    @classmethod
    def of(cls, customer: str, tz: str, entries: list[Entry]) -> Profile:
        ordered = tuple(sorted(entries, key=lambda e: (e.meter, e.window, e.action, e.subscription)))
        draft = cls(customer, tz, ordered)
        digest = hashlib.sha256(orjson.dumps(draft._doc(), option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        return cls(customer, tz, ordered, digest)

    def meters(self) -> set[str]:
        return {e.meter for e in self.entries}

    def counters_of(self, meter: str) -> list[Entry]:
        """One entry per distinct counter of the meter (a block and a notify limit on the same
        window share their counter)."""
        return self._counters.get(meter, [])

    def limits_on(self, meter: str, window: str) -> list[Entry]:
        return self._limits.get((meter, window), [])

    def lowest_max(self, meter: str, window: str) -> Decimal | None:
        """The smallest max of the limits on a meter's window (below it none is reached)."""
        return self._lowest.get((meter, window))

    @cached_property
    def _lowest(self) -> dict[tuple[str, str], Decimal]:
        return {k: min(e.max for e in v) for k, v in self._limits.items()}

    @cached_property
    def _counters(self) -> dict[str, list[Entry]]:
        seen: dict[tuple[str, str, Cycle | None], Entry] = {}
        for entry in self.entries:
            seen.setdefault(entry.counter, entry)
        out: dict[str, list[Entry]] = {}
        for entry in seen.values():
            out.setdefault(entry.meter, []).append(entry)
        return out

    @cached_property
    def _limits(self) -> dict[tuple[str, str], list[Entry]]:
        out: dict[tuple[str, str], list[Entry]] = {}
        for entry in self.entries:
            out.setdefault((entry.meter, entry.window), []).append(entry)
        return out

    # -- storage -------------------------------------------------------------------------
    def _doc(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "tz": self.tz,
            "entries": [
                {
                    "subscription": e.subscription,
                    "meter": e.meter,
                    "window": e.window,
                    "max": str(e.max),
                    "action": e.action,
                    "cycle": None
                    if e.cycle is None
                    else {
                        "interval": e.cycle.interval,
                        "count": e.cycle.count,
                        "anchor": e.cycle.anchor,
                        "tz": e.cycle.tz,
                        "start": e.cycle.start.isoformat(),
                        "ends_at": e.cycle.ends_at.isoformat() if e.cycle.ends_at else None,
                    },
                }
                for e in self.entries
            ],
        }

    def to_json(self, **extra: Any) -> str:
        return orjson.dumps({**self._doc(), "version": self.version, **extra}).decode()

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Profile:
        entries = []
        for e in doc["entries"]:
            c = e.get("cycle")
            cycle = (
                None
                if c is None
                else Cycle(
                    c["interval"],
                    int(c["count"]),
                    c["anchor"],
                    c["tz"],
                    datetime.fromisoformat(c["start"]),
                    datetime.fromisoformat(c["ends_at"]) if c["ends_at"] else None,
                )
            )
            entries.append(Entry(e["subscription"], e["meter"], e["window"], Decimal(e["max"]), e["action"], cycle))
        return cls(doc["customer"], doc["tz"], tuple(entries), doc["version"], doc.get("ver", ""))
