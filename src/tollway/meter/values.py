"""Meter reads for billing, next to :func:`tollway.meter.query.query_usage` and with the same
conditions (:func:`tollway.meter.sql.base_conditions`: type, time range, voided, ``as_of``,
the meter's filters, a usable value):

- :func:`event_values`: each counted event's value in event order, for charges priced event by
  event (a percentage charge with a fixed fee, a minimum or a maximum per event);
- :func:`meter_totals`: the period value of several meters (an invoice reads every meter of its
  plan over the same period), as of the invoice's ``as_of`` cutoff;
- :func:`meter_totals_many`: the same for many customers' windows at once (the billing run reads
  the totals of a chunk of invoices together).

Meters whose partials add up (``count``, ``sum``: :attr:`Aggregation.additive`) and whose rollups
are ready are read through the rollups, one statement per meter for all the windows
(:func:`tollway.meter.query.usage_totals` with the cutoff: the present value corrected by the
events ingested or voided since the cutoff, exactly what the raw events give as of it). The
others (extremes, ``latest``, rollups being built) are read from the raw events as of the cutoff,
the meters on one event type in one scan of each customer's events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from tollway.db import database_now
from tollway.meter.aggregations import REGISTRY, to_decimal
from tollway.meter.definition import MeterDefinition
from tollway.meter.query import usage_totals
from tollway.meter.sql import base_conditions, dialect_of, filter_sql, value_expr

ROLLUP_CUTOFF_HORIZON = timedelta(days=1)
"""Cutoffs older than this (by the database's clock) are read from the raw events: the events
ingested since such a cutoff are many, and taking them off the present value costs more than
the raw read (see docs/billing.md)."""
TOTALS_AGGREGATIONS = frozenset(name for name, agg in REGISTRY.items() if agg.scalar)
"""The aggregations :func:`meter_totals` computes (``latest`` needs a window function)."""


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
    d = dialect_of(session)
    where = base_conditions(d, meter, start=start, end=end, customer=customer, as_of=as_of)
    prop = meter.value_property if REGISTRY[meter.aggregation].value_kind != "none" else None
    number = d.number_value(prop) if prop else "1"
    split = d.text_value(split_by) if split_by else "NULL"
    sql = (
        f"SELECT {number} AS value, {split} AS split FROM events e "  # noqa: S608 - validated paths only
        f"WHERE {' AND '.join(where)} ORDER BY e.timestamp, e.id"
    )
    out: dict[str | None, list[Decimal]] = {}
    for value, key in session.execute(text(sql), d.params):
        amount = to_decimal(value)
        if amount is None:
            continue
        out.setdefault(None if key is None else str(key), []).append(amount)
    return out


def meter_totals(
    session: Session,
    meters: Sequence[MeterDefinition],
    *,
    start: datetime,
    end: datetime,
    customer: str,
    as_of: datetime | None = None,
) -> dict[str, Decimal | None]:
    """The value over ``[start, end)`` of each meter (aggregations in :data:`TOTALS_AGGREGATIONS`),
    as :func:`query_usage` without a window would return it; one statement per event type."""
    [out] = meter_totals_many(session, meters, [Window(customer, start, end)], as_of=as_of)
    return out


@dataclasses.dataclass(frozen=True)
class Window:
    """One customer's ``[start, end)``: what an invoice reads its meters over."""

    customer: str
    start: datetime
    end: datetime


WINDOWS_PER_STATEMENT = 100
"""Windows read by one statement of :func:`meter_totals_many` (bounds its parameter count)."""


def meter_totals_many(
    session: Session,
    meters: Sequence[MeterDefinition],
    windows: Sequence[Window],
    *,
    as_of: datetime | None = None,
    use_rollups: bool = True,
) -> list[dict[str, Decimal | None]]:
    """:func:`meter_totals` for many windows (a billing run's invoices). Additive meters with
    rollups (unless not ``use_rollups``): one statement per meter for all the windows. The
    others: one statement per event type and up to :data:`WINDOWS_PER_STATEMENT` windows, one
    branch per window (each an index range scan of that customer's events, with the same
    conditions as a single read) joined by ``UNION ALL``. Returns each window's totals, in the
    order of ``windows``."""
    out: list[dict[str, Decimal | None]] = [{} for _ in windows]
    by_type: dict[str, list[MeterDefinition]] = {}
    spans = [(w.customer, w.start, w.end) for w in windows]
    if use_rollups and as_of is not None and windows and any(REGISTRY[m.aggregation].additive for m in meters):
        # An old cutoff (the simulator, a finalized invoice recomputed) has many events ingested
        # since it: correcting the present value would read them all, more than the raw read.
        use_rollups = as_of >= database_now(session) - ROLLUP_CUTOFF_HORIZON
    for meter in meters:
        agg = REGISTRY[meter.aggregation]
        if meter.aggregation not in TOTALS_AGGREGATIONS:
            raise ValueError(f"meter_totals cannot compute '{meter.aggregation}' (meter '{meter.key}')")
        if use_rollups and agg.additive and agg.rolls_up and meter.rollups_ready and windows:
            for totals, total in zip(out, usage_totals(session, meter, spans, as_of=as_of), strict=True):
                totals[meter.key] = total
        else:
            by_type.setdefault(meter.event_type, []).append(meter)
    for group in by_type.values():
        # The shared conditions: those of a filterless count meter on the event type.
        shared = dataclasses.replace(group[0], aggregation="count", value_property=None, filters=())
        for first in range(0, len(windows), WINDOWS_PER_STATEMENT):
            d = dialect_of(session)
            columns = []
            for meter in group:
                agg = REGISTRY[meter.aggregation]
                own = [filter_sql(d, f) for f in meter.filters]
                value = value_expr(d, meter)
                if agg.value_kind == "number":
                    own.append(f"{value} IS NOT NULL")
                columns.append(agg.aggregate_where(d, value, " AND ".join(own) or "1 = 1"))
            branches = []
            for n, w in enumerate(windows[first : first + WINDOWS_PER_STATEMENT], start=first):
                where = base_conditions(d, shared, start=w.start, end=w.end, customer=w.customer, as_of=as_of)
                branches.append(
                    f"SELECT {n} AS n, {', '.join(columns)} FROM events e WHERE {' AND '.join(where)}"  # noqa: S608
                )
            sql = " UNION ALL ".join(branches)
            for n, *row in session.execute(text(sql), d.params):
                for meter, raw in zip(group, row, strict=True):
                    total = to_decimal(raw)
                    out[n][meter.key] = REGISTRY[meter.aggregation].empty if total is None else total
    return out
