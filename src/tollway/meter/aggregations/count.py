from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.kit.money import EXACT
from tollway.meter.aggregations.base import Aggregation, Partial

if TYPE_CHECKING:
    from tollway.meter.sql import Dialect


class Count(Aggregation):
    """The number of events."""

    name = "count"
    value_kind = "none"
    empty = Decimal(0)
    can_be_limited = True
    additive = True

    def aggregate(self, d: Dialect, value: str) -> str:
        return "COUNT(*)"

    def aggregate_where(self, d: Dialect, value: str, cond: str) -> str:
        return f"COUNT(CASE WHEN {cond} THEN 1 END)"

    def from_rollups(self, d: Dialect) -> str:
        return "SUM(u.n)"

    def merge_values(self, a: Partial, b: Partial) -> Partial:
        assert a.value is not None and b.value is not None
        return Partial(EXACT.add(a.value, b.value))  # no rounding at any size


COUNT = Count()
