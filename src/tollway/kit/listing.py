"""Query parameters shared by endpoints: ``?limit=&after=`` of every list, and RFC 3339 times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query

from tollway.errors import ValidationFailed
from tollway.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor
from tollway.kit.time import check_billing_time, parse_rfc3339


@dataclass(frozen=True)
class ListParams:
    limit: int
    after: str | None


def list_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
    after: Annotated[str | None, Query(description="cursor from the previous page's `next`")] = None,
) -> ListParams:
    if after is not None:
        try:
            decode_cursor(after)
        except ValueError as exc:
            raise ValidationFailed.field("after", str(exc)) from exc
    return ListParams(limit=limit, after=after)


def time_param(name: str, value: str | None, *, billing: bool = False) -> datetime | None:
    """An optional RFC 3339 query parameter; a bad one is a 422 naming the parameter. With
    ``billing``, the instant must also lie in the billing range (``kit.time.check_billing_time``)."""
    if value is None:
        return None
    try:
        moment = parse_rfc3339(value)
        return check_billing_time(moment) if billing else moment
    except ValueError as exc:
        raise ValidationFailed.field(name, str(exc)) from exc
