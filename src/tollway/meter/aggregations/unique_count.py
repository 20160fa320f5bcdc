from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.meter.aggregations.base import Aggregation

if TYPE_CHECKING:
    from tollway.meter.sql import Dialect


class UniqueCount(Aggregation):
    """The number of distinct values of ``value_property``, compared as text (1 and "1" are the
    same value). Distinct values do not add up: no hourly rollups. A window equal to a customer's
    billing period is read from the period's set of distinct values (``meter.distinct``), any
    other window from the raw events."""

    name = "unique_count"
    value_kind = "text"
    empty = Decimal(0)
    rolls_up = False
    keeps_period_sets = True

    def aggregate(self, d: Dialect, value: str) -> str:
        return f"COUNT(DISTINCT {value})"


UNIQUE_COUNT = UniqueCount()
