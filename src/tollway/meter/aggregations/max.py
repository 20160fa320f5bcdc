from __future__ import annotations

from typing import TYPE_CHECKING

from tollway.meter.aggregations.base import Aggregation, Partial

if TYPE_CHECKING:
    from tollway.meter.sql import Dialect


class Max(Aggregation):
    """The largest numeric value."""

    name = "max"
    value_kind = "number"

    def aggregate(self, d: Dialect, value: str) -> str:
        return d.decimal_max(value)

    def rollup_columns(self, d: Dialect, value: str) -> tuple[str, str, str]:
        return "NULL", "NULL", d.decimal_max(value)

    def from_rollups(self, d: Dialect) -> str:
        return d.decimal_max("u.vmax")

    def merge_values(self, a: Partial, b: Partial) -> Partial:
        assert a.value is not None and b.value is not None
        return Partial(max(a.value, b.value))


MAX = Max()
