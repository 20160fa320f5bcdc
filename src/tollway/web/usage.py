"""Usage charts for the pages: a meter's value per day, read through the meter-usage API
function (the same figures as ``GET /v1/meters/{key}/usage``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.orm import Session

from tollway.meter.endpoints import meter_usage
from tollway.models import Meter


def meter_chart(
    session: Session,
    key: str,
    *,
    customer: str | None,
    start: datetime,
    end: datetime,
    tz: str | None = None,
    window: Literal["hour", "day", "month"] = "day",
) -> dict[str, Any]:
    """``{"key", "name", "total", "chart": {"label", "x": [unix s], "y": [numbers]}}``; ``total``
    is the exact decimal sum of the windows, the chart's numbers are for drawing only."""
    usage = meter_usage(
        key, session, customer=customer, from_=start.isoformat(), to=end.isoformat(), window=window, tz=tz
    )
    meter = session.get(Meter, key)
    name = (meter.name if meter is not None else None) or key
    values = [Decimal(row.value or 0) for row in usage.data]
    return {
        "key": key,
        "name": name,
        "total": sum(values, Decimal(0)),
        "chart": {
            "label": name,
            "x": [int(row.from_.timestamp()) for row in usage.data],
            "y": [float(v) for v in values],
        },
    }
