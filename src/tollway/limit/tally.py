"""From stored events to counter increments: which events a limited meter counts (SQL, with the
meter's own filters and value, as its usage query reads them), and which windows of the
customer's profile they fall in (Python, in the customer's zone or the subscription's cycle).

Used by ingestion (the events a batch actually inserted: duplicates never count), by a void (the
voided event, taken off) and by seeding (events already stored for windows after the current
ones).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tollway.limit.profile import Entry, Profile
from tollway.meter.aggregations import REGISTRY
from tollway.meter.query import Dialect, MeterDefinition, filter_sql

GRACE = timedelta(seconds=60)
"""Windows that ended longer ago than this are not counted into: no check reads them again
(a check reads the window containing its own now), so a backdated event costs nothing."""

EXACT = decimal.Context(prec=200)


@dataclass(frozen=True, order=True)
class CounterKey:
    customer: str
    meter: str
    window: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Row:
    """An event a limited meter counts: its meter, customer, time and contribution."""

    meter: str
    customer: str
    timestamp: datetime
    value: Decimal


def rows_sql(
    d: Dialect,
    meters: Iterable[MeterDefinition],
    customers: Mapping[str, Sequence[str]],
    source: str,
    extra_where: Sequence[str] = (),
) -> str | None:
    """``SELECT meter, customer, timestamp, value`` of the events in ``source`` (aliased ``e``)
    that each meter counts, for the customers limited on it; ``None`` when nothing can match."""
    parts = []
    for meter in meters:
        limited = customers.get(meter.key)
        agg = REGISTRY[meter.aggregation]
        if not limited or not agg.additive:
            continue
        if agg.value_kind == "number":
            assert meter.value_property
            value = d.number(meter.value_property)
        else:
            value = "CAST(1 AS NUMERIC)"
        where = [
            f"e.type = {d.bind(meter.event_type)}",
            f"e.customer {d.in_list(sorted(limited), 'text')}",
            *extra_where,
            *(filter_sql(d, f) for f in meter.filters),
        ]
        if agg.value_kind == "number":
            where.append(f"{value} IS NOT NULL")
        parts.append(
            f"SELECT CAST({d.bind(meter.key)} AS TEXT) AS mk, e.customer AS customer, e.timestamp AS ts, "
            f"{value} AS v FROM {source} e WHERE {' AND '.join(where)}"
        )
    return " UNION ALL ".join(parts) if parts else None


def to_row(raw: Sequence[Any]) -> Row:
    mk, customer, ts, value = raw[0], raw[1], raw[2], raw[3]
    if isinstance(ts, str):  # SQLite text
        ts = datetime.fromisoformat(ts)
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return Row(str(mk), str(customer), ts, amount)


def limited_customers(profiles: Mapping[str, Profile]) -> dict[str, list[str]]:
    """meter key → the customers whose profile limits it."""
    out: dict[str, list[str]] = {}
    for customer, profile in profiles.items():
        for meter in profile.meters():
            out.setdefault(meter, []).append(customer)
    return out


def increments(
    rows: Iterable[Row], profiles: Mapping[str, Profile], *, now: datetime, sign: int = 1
) -> dict[CounterKey, Decimal]:
    """What to add to which counter. Windows that ended before ``now - GRACE`` are skipped."""
    horizon = now - GRACE
    out: dict[CounterKey, Decimal] = {}
    counters: dict[tuple[str, str], list[Entry]] = {}
    last: dict[tuple[str, int], tuple[datetime, datetime]] = {}  # window cache: rows come in time order
    for row in rows:
        profile = profiles.get(row.customer)
        if profile is None:
            continue
        entries = counters.get((row.customer, row.meter))
        if entries is None:
            entries = counters[(row.customer, row.meter)] = profile.counters_of(row.meter)
        for entry in entries:
            cache_key = (row.customer, id(entry))
            bounds = last.get(cache_key)
            if bounds is None or not bounds[0] <= row.timestamp < bounds[1]:
                found = entry.bounds(row.timestamp, profile.tz)
                if found is None:
                    continue
                bounds = last[cache_key] = found
            if bounds[1] <= horizon:
                continue
            key = CounterKey(row.customer, row.meter, entry.window, bounds[0], bounds[1])
            out[key] = EXACT.add(out.get(key, Decimal(0)), row.value if sign > 0 else -row.value)
    return out


def crossings(
    totals: Mapping[CounterKey, Decimal], added: Mapping[CounterKey, Decimal], profiles: Mapping[str, Profile]
) -> list[tuple[Entry, CounterKey, Decimal]]:
    """The limits whose window's counter reached its max with these increments:
    ``before < max <= after``."""
    out = []
    for key, total in totals.items():
        inc = added.get(key, Decimal(0))
        if inc <= 0:
            continue
        before = EXACT.subtract(total, inc)
        profile = profiles.get(key.customer)
        for entry in profile.entries if profile else ():
            if entry.meter != key.meter or entry.window != key.window:
                continue
            if before < entry.max <= total and entry.bounds(key.start, profile.tz if profile else "UTC") == (
                key.start,
                key.end,
            ):
                out.append((entry, key, total))
    return out
