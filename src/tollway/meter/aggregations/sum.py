from decimal import Decimal

from tollway.meter.aggregations.base import Aggregation

# SQLite's SUM adds floats: tw_decimal_sum (registered on every SQLite connection) adds exactly.
SUM = Aggregation("sum", "number", Decimal(0), "SUM({v})", "tw_decimal_sum({v})", additive=True)
