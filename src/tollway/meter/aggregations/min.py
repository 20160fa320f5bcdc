from __future__ import annotations

from typing import TYPE_CHECKING

from tollway.meter.aggregations.base import Aggregation, Partial

if TYPE_CHECKING:
    from tollway.meter.sql import Dialect


class Min(Aggregation):
    """The smallest numeric value."""

    name = "min"
    value_kind = "number"

    def aggregate(self, d: Dialect, value: str) -> str:
        return d.decimal_min(value)

    def rollup_columns(self, d: Dialect, value: str) -> tuple[str, str, str]:
        return "NULL", d.decimal_min(value), "NULL"

    def from_rollups(self, d: Dialect) -> str:
        return d.decimal_min("u.vmin")

    def merge_values(self, a: Partial, b: Partial) -> Partial:
        assert a.value is not None and b.value is not None
        return Partial(min(a.value, b.value))


MIN = Min()
