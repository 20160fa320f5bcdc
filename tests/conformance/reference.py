"""The Python reference the conformance suite compares every backend with: what a meter's value
is, computed event by event from the events themselves (docs/metering.md's semantics)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tollway.event.ingest import IncomingEvent
from tollway.kit.money import EXACT
from tollway.meter.definition import MeterDefinition

EMPTY: dict[str, Decimal | None] = {
    "count": Decimal(0),
    "sum": Decimal(0),
    "unique_count": Decimal(0),
    "min": None,
    "max": None,
    "latest": None,
}
TEXT = {"unique_count"}
NUMBER = {"sum", "min", "max", "latest"}


def number(props: dict[str, Any], path: str) -> Decimal | None:
    """A JSON number only: strings, booleans, null and absent values are not numbers."""
    value = props.get(path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(str(value))


def text(props: dict[str, Any], path: str) -> str | None:
    value = props.get(path)
    return value if isinstance(value, str) else None


def _eq(props: dict[str, Any], path: str, value: Any) -> bool:
    have = props.get(path)
    if isinstance(value, bool):
        return isinstance(have, bool) and have == value
    if isinstance(value, int | float):
        n = number(props, path)
        return n is not None and n == Decimal(str(value))
    return isinstance(have, str) and have == value


def matches(flt: dict[str, Any], props: dict[str, Any]) -> bool:
    path, op, value = flt["property"], flt["op"], flt.get("value")
    if op == "eq":
        return _eq(props, path, value)
    if op == "neq":
        return not _eq(props, path, value)
    if op in ("in", "not_in"):
        hit = any(_eq(props, path, v) for v in value)
        return hit if op == "in" else not hit
    if op in ("gt", "gte", "lt", "lte"):  # numbers only in this suite (text compares by collation)
        n = number(props, path)
        if n is None:
            return False
        bound = Decimal(str(value))
        return {"gt": n > bound, "gte": n >= bound, "lt": n < bound, "lte": n <= bound}[op]
    if op == "exists":
        present = props.get(path) is not None
        return present if value in (None, True) else not present
    raise ValueError(op)


@dataclass(frozen=True)
class Stored:
    """An event as the backend holds it: when it became visible and when it was voided."""

    event: IncomingEvent
    ingested_at: datetime
    voided_at: datetime | None = None

    def counts(self, as_of: datetime | None) -> bool:
        if as_of is None:
            return self.voided_at is None
        return self.ingested_at <= as_of and (self.voided_at is None or self.voided_at > as_of)


def counted(
    meter: MeterDefinition,
    stored: Iterable[Stored],
    *,
    start: datetime,
    end: datetime,
    customer: str | None,
    as_of: datetime | None = None,
) -> list[IncomingEvent]:
    """The events the meter counts in ``[start, end)``, in event order (timestamp, id)."""
    out = []
    for s in stored:
        e = s.event
        if e.type != meter.event_type or not (start <= e.timestamp < end) or not s.counts(as_of):
            continue
        if customer is not None and e.customer != customer:
            continue
        if not all(matches(f, e.properties) for f in meter.filters):
            continue
        if meter.aggregation in NUMBER and number(e.properties, meter.value_property or "") is None:
            continue
        out.append(e)
    return sorted(out, key=lambda e: (e.timestamp, e.id))


def aggregate(meter: MeterDefinition, events: Sequence[IncomingEvent]) -> Decimal | None:
    agg, path = meter.aggregation, meter.value_property or ""
    if agg == "count":
        return Decimal(len(events))
    if agg == "unique_count":
        return Decimal(len({t for e in events if (t := text(e.properties, path)) is not None}))
    values = [(e.timestamp, e.id, number(e.properties, path)) for e in events]
    numbers = [v for _, _, v in values if v is not None]
    if not numbers:
        return EMPTY[agg]
    if agg == "sum":
        return functools.reduce(EXACT.add, numbers, Decimal(0))  # the default context rounds to 28 digits
    if agg == "min":
        return min(numbers)
    if agg == "max":
        return max(numbers)
    if agg == "latest":
        return max((t, i, v) for t, i, v in values if v is not None)[2]
    raise ValueError(agg)


def window_start(ts: datetime, window: str | None, tz: ZoneInfo, start: datetime) -> datetime:
    """The start of the window holding ``ts``, aligned in ``tz`` and clipped to the range."""
    if window is None:
        return start
    local = ts.astimezone(tz)
    if window == "hour":
        floor = local.replace(minute=0, second=0, microsecond=0)
    elif window == "day":
        floor = datetime(local.year, local.month, local.day, tzinfo=tz)
    elif window == "month":
        floor = datetime(local.year, local.month, 1, tzinfo=tz)
    else:
        raise ValueError(window)
    return max(floor.astimezone(UTC), start)


def usage(
    meter: MeterDefinition,
    stored: Iterable[Stored],
    *,
    start: datetime,
    end: datetime,
    customer: str | None,
    window: str | None,
    tz: ZoneInfo,
    group_by: Sequence[str],
    as_of: datetime | None = None,
) -> dict[tuple[datetime, tuple[str | None, ...]], Decimal | None]:
    """Value per (window start, group values) of every window and group that has events."""
    cells: dict[tuple[datetime, tuple[str | None, ...]], list[IncomingEvent]] = {}
    for e in counted(meter, stored, start=start, end=end, customer=customer, as_of=as_of):
        key = (window_start(e.timestamp, window, tz, start), tuple(text(e.properties, g) for g in group_by))
        cells.setdefault(key, []).append(e)
    return {key: aggregate(meter, events) for key, events in cells.items()}
