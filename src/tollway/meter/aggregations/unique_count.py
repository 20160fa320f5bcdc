from decimal import Decimal

from tollway.meter.aggregations.base import Aggregation

# Distinct values of value_property, compared as text (1 and "1" are the same value).
UNIQUE_COUNT = Aggregation("unique_count", "text", Decimal(0), "COUNT(DISTINCT {v})", "COUNT(DISTINCT {v})")
