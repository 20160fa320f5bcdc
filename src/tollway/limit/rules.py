"""What a plan's ``limits`` may say, checked when the plan is written and again when published.

Limits are enforced from counters kept as events are stored (``tollway.limit.tally``): a window's
counter is the sum of its events' contributions, so only meters whose aggregation says
``can_be_limited`` (``count``, ``sum``) can be limited exactly. ``max``, ``min``, ``latest`` and
``unique_count`` meters are refused with a 422 naming ``limits[i].meter``: a distinct count or an extreme value
cannot be kept by adding events and taking voided ones off, and an approximate limit would
block customers on numbers that the invoice does not show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from tollway.catalog.schemas import Limit
from tollway.errors import FieldError
from tollway.meter.aggregations import REGISTRY
from tollway.models import Meter


def check_limits(limits: Sequence[Limit], meters: Mapping[str, Meter]) -> list[FieldError]:
    """Problems with a plan's limits, each naming its field. ``meters`` holds the plan's meters
    that exist (a missing meter is reported by the catalog with every other reference)."""
    errors: list[FieldError] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, limit in enumerate(limits):
        first = seen.setdefault((limit.meter, limit.window, limit.action), i)
        if first != i:
            message = f"a '{limit.action}' limit per {limit.window} on meter '{limit.meter}' is already limits[{first}]"
            errors.append(FieldError(f"limits[{i}]", message))
        meter = meters.get(limit.meter)
        if meter is not None and not REGISTRY[meter.aggregation].can_be_limited:
            message = (
                f"meter '{limit.meter}' aggregates with '{meter.aggregation}'; only count and sum meters "
                "can be limited (their value is kept as a counter as events arrive)"
            )
            errors.append(FieldError(f"limits[{i}].meter", message))
    return errors


def check_overrides(limits: Sequence[Limit], overrides: Mapping[str, Decimal]) -> list[FieldError]:
    """A subscription's ``overrides.limits`` may only replace the max of a ``period`` limit the
    plan has (the other windows keep the plan's)."""
    period_meters = {limit.meter for limit in limits if limit.window == "period"}
    return [
        FieldError(f"overrides.limits.{meter}", f"the plan has no 'period' limit on meter '{meter}'")
        for meter in overrides
        if meter not in period_meters
    ]
