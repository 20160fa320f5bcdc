from tollway.meter.aggregations.base import Aggregation

MAX = Aggregation("max", "number", None, "MAX({v})", "MAX({v})")
