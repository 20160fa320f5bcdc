from tollway.meter.aggregations.base import Aggregation

# The value of the newest event (by timestamp, then id) that has a numeric value.
LATEST = Aggregation("latest", "number", None, None, None)
