"""Per-event meter values, for charges priced event by event (a percentage charge with a fixed
fee, a minimum or a maximum per event).

One SQL statement, with the same conditions as :func:`tollway.meter.query.query_usage` (type,
time range, not voided, ingested by ``as_of``, the meter's filters), returning each event's value
in event order (timestamp, then id) and optionally the value of one property to split by.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from tollway.meter.query import MeterDefinition, _dialect, _to_decimal, filter_sql


def event_values(
    session: Session,
    meter: MeterDefinition,
    *,
    start: datetime,
    end: datetime,
    customer: str,
    as_of: datetime | None = None,
    split_by: str | None = None,
) -> dict[str | None, list[Decimal]]:
    """Each counted event's value (``1`` for a ``count`` meter), keyed by the ``split_by``
    property's value (``None`` key when not splitting, or when the event lacks it)."""
    d = _dialect(session)
    where = [
        f"e.customer = {d.bind(customer)}",
        f"e.type = {d.bind(meter.event_type)}",
        f"e.timestamp >= {d.bind(d.ts(start))}",
        f"e.timestamp < {d.bind(d.ts(end))}",
        "e.voided_at IS NULL",
    ]
    if as_of is not None:
        where.append(f"e.ingested_at <= {d.bind(d.ts(as_of))}")
    where += [filter_sql(d, f) for f in meter.filters]
    if meter.aggregation == "count" or not meter.value_property:
        value_expr = "1"
    else:
        value_expr = d.number(meter.value_property)
        where.append(f"{value_expr} IS NOT NULL")
    split_expr = d.text_value(split_by) if split_by else "NULL"
    sql = (
        f"SELECT {value_expr} AS value, {split_expr} AS split FROM events e "  # noqa: S608 - validated paths only
        f"WHERE {' AND '.join(where)} ORDER BY e.timestamp, e.id"
    )
    out: dict[str | None, list[Decimal]] = {}
    for value, split in session.execute(text(sql), d.params):
        number = _to_decimal(value)
        if number is None:
            continue
        out.setdefault(None if split is None else str(split), []).append(number)
    return out
