"""The ``?limit=&after=`` query parameters shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from tollway.errors import ValidationFailed
from tollway.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor


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
