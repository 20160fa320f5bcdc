from tollway.meter.aggregations.base import Aggregation

MIN = Aggregation("min", "number", None, "MIN({v})", "MIN({v})")
