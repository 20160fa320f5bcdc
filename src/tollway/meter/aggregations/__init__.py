"""Registry of meter aggregations (see :mod:`tollway.meter.aggregations.base`)."""

from tollway.meter.aggregations.base import Aggregation, Partial, ValueKind, to_decimal
from tollway.meter.aggregations.count import COUNT
from tollway.meter.aggregations.latest import LATEST
from tollway.meter.aggregations.max import MAX
from tollway.meter.aggregations.min import MIN
from tollway.meter.aggregations.sum import SUM
from tollway.meter.aggregations.unique_count import UNIQUE_COUNT

REGISTRY: dict[str, Aggregation] = {a.name: a for a in (COUNT, SUM, MAX, MIN, LATEST, UNIQUE_COUNT)}

__all__ = ["REGISTRY", "Aggregation", "Partial", "ValueKind", "to_decimal"]
