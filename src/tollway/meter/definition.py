"""What a meter counts, as the query code reads it (the ``meters`` row without its bookkeeping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollway.models import Meter


@dataclass(frozen=True)
class MeterDefinition:
    key: str
    event_type: str
    aggregation: str
    value_property: str | None = None
    filters: tuple[dict[str, Any], ...] = ()
    group_by: tuple[str, ...] = ()
    rollups_ready: bool = True
    """False while the worker (re)builds the meter's rollups: queries then read raw events."""

    @classmethod
    def from_row(cls, row: Meter) -> MeterDefinition:
        return cls(
            key=row.key,
            event_type=row.event_type,
            aggregation=row.aggregation,
            value_property=row.value_property,
            filters=tuple(row.filters or ()),
            group_by=tuple(row.group_by or ()),
            rollups_ready=row.rollup_status == "ready",
        )
