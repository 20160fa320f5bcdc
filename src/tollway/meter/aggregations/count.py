from decimal import Decimal

from tollway.meter.aggregations.base import Aggregation

COUNT = Aggregation("count", "none", Decimal(0), "COUNT(*)", "COUNT(*)", additive=True)
