"""An aggregation turns the events of one window (and group) into one value, in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Aggregation:
    name: str
    # Does the aggregation read value_property as a number (events without a numeric value are
    # left out), as text (unique_count), or not at all (count)?
    value_kind: str  # "none" | "number" | "text"
    # Value of a window without events: zero for count-like aggregations, none for the others.
    empty: Decimal | None
    # SQL aggregate over the expression ``{v}`` (the number or text value); ``None`` for latest,
    # which picks the newest event's value with a window function instead of an aggregate.
    sql_postgres: str | None
    sql_sqlite: str | None
    # Is the value of a window the sum of its events' contributions (count: 1, sum: the value),
    # so that a counter can be kept by adding each stored event and taking a voided one off?
    # Limits are enforced only on such meters (see ``tollway.limit``).
    additive: bool = False
