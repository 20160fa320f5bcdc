from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.kit.money import EXACT
from tollway.meter.aggregations.base import Aggregation, Partial

if TYPE_CHECKING:
    from tollway.meter.sql import Dialect


class Sum(Aggregation):
    """The exact sum of the events' numeric values (SQLite's SUM adds floats: the dialect's
    ``decimal_sum`` is exact on both databases)."""

    name = "sum"
    value_kind = "number"
    empty = Decimal(0)
    can_be_limited = True
    additive = True

    def aggregate(self, d: Dialect, value: str) -> str:
        return d.decimal_sum(value)

    def rollup_columns(self, d: Dialect, value: str) -> tuple[str, str, str]:
        return d.decimal_sum(value), "NULL", "NULL"

    def from_rollups(self, d: Dialect) -> str:
        return d.decimal_sum("u.vs")

    def merge_values(self, a: Partial, b: Partial) -> Partial:
        assert a.value is not None and b.value is not None
        return Partial(EXACT.add(a.value, b.value))  # no rounding at any size


SUM = Sum()
