"""From stored events to counter increments: which events a limited meter counts (SQL, with the
meter's own filters and value, as its usage query reads them), and which windows of the
customer's profile they fall in (Python, in the customer's zone or the subscription's cycle).

Used by the worker's fold (the pending events it rolls up: each stored event once, duplicates
never), by a check (the events still pending), by a void (the voided event, taken off) and by
seeding (events already stored for windows after the current ones).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from tollway.limit.profile import Entry, Profile
from tollway.meter.aggregations import REGISTRY
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import Dialect, filter_sql

GRACE = timedelta(seconds=60)
"""Windows that ended longer ago than this are not counted into: no check reads them again
(a check reads the window containing its own now), so a backdated event costs nothing."""

EXACT = decimal.Context(prec=200)


class CounterKey(NamedTuple):
    """One counter: a customer's meter in one window (a tuple: hashed and ordered in C)."""

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
    *,
    aliased: bool = False,
) -> str | None:
    """``SELECT meter, customer, timestamp, value`` of the events in ``source`` that each meter
    counts, for the customers limited on it; ``None`` when nothing can match. ``source`` is a
    table or subquery (aliased ``e`` here), or (``aliased``) a ``FROM`` item that names its events
    ``e`` itself (``Dialect.pending_events()``)."""
    from_item = source if aliased else f"{source} e"
    parts = []
    for meter in meters:
        limited = customers.get(meter.key)
        agg = REGISTRY[meter.aggregation]
        if not limited or not agg.can_be_limited:
            continue
        if agg.value_kind == "number":
            assert meter.value_property
            value = d.number_value(meter.value_property)
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
            f"{value} AS v FROM {from_item} WHERE {' AND '.join(where)}"
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


Windows = dict[tuple[str, ...], tuple[datetime, datetime, "CounterKey"]]
"""The window each counter of a profile found last: most events fall in it again, and finding a
window (zone arithmetic, billing cycles) costs far more than checking that an instant is in it."""


def increments(
    rows: Iterable[Row],
    profiles: Mapping[str, Profile],
    *,
    now: datetime,
    sign: int = 1,
    last: Windows | None = None,
) -> dict[CounterKey, Decimal]:
    """What to add to which counter. Windows that ended before ``now - GRACE`` are skipped.
    ``last`` may be kept from batch to batch (it is keyed by the profile's version)."""
    horizon = now - GRACE
    out: dict[CounterKey, Decimal] = {}
    # Per (customer, meter): the profile's counters of the meter, each with its cache key.
    plans: dict[tuple[str, str], list[tuple[Entry, tuple[str, ...]]]] = {}
    if last is None:
        last = {}
    elif len(last) > 200_000:
        last.clear()
    for row in rows:
        plan = plans.get((row.customer, row.meter))
        if plan is None:
            profile = profiles.get(row.customer)
            entries = profile.counters_of(row.meter) if profile is not None else []
            v = profile.version if profile is not None else ""
            plan = plans[(row.customer, row.meter)] = [
                (e, (row.customer, v, e.subscription, e.meter, e.window)) for e in entries
            ]
        value = row.value if sign > 0 else -row.value
        ts = row.timestamp
        for entry, cache_key in plan:
            hit = last.get(cache_key)
            if hit is None or not hit[0] <= ts < hit[1]:
                found = entry.bounds(ts, profiles[row.customer].tz)
                if found is None:
                    continue
                hit = last[cache_key] = (found[0], found[1], CounterKey(row.customer, row.meter, entry.window, *found))
            if hit[1] <= horizon:
                continue
            key = hit[2]
            previous = out.get(key)
            out[key] = value if previous is None else EXACT.add(previous, value)
    return out


def thresholds(added: Mapping[CounterKey, Decimal], profiles: Mapping[str, Profile]) -> dict[CounterKey, Decimal]:
    """The smallest max of the limits on each counter: below it no limit can have been reached,
    so a backend need not send the counter's value back."""
    out = {}
    for key in added:
        profile = profiles.get(key.customer)
        lowest = profile.lowest_max(key.meter, key.window) if profile is not None else None
        if lowest is not None:
            out[key] = lowest
    return out


def crossings(
    totals: Mapping[CounterKey, Decimal], added: Mapping[CounterKey, Decimal], profiles: Mapping[str, Profile]
) -> list[tuple[Entry, CounterKey, Decimal]]:
    """The limits whose window's counter reached its max with these increments:
    ``before < max <= after``."""
    out = []
    for key, total in totals.items():
        inc = added.get(key, Decimal(0))
        profile = profiles.get(key.customer)
        if inc <= 0 or profile is None:
            continue
        before = EXACT.subtract(total, inc)
        for entry in profile.limits_on(key.meter, key.window):
            if before < entry.max <= total and entry.bounds(key.start, profile.tz) == (key.start, key.end):
                out.append((entry, key, total))
    return out
