"""Cursor pagination: ``?limit=`` (default 50, max 500) and ``?after=<cursor>``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")
CursorKey = str | Callable[[Any], str]
R = TypeVar("R")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    data: list[T]
    next: str | None

    @classmethod
    def of(cls, rows: Sequence[Any], limit: int, key: CursorKey, convert: Callable[[Any], T]) -> Page[T]:
        """The page for ``rows`` fetched with ``limit + 1``: the first ``limit`` converted, and a
        cursor on ``key`` (an attribute name, or a function of the row) when there is a further page."""
        return cls(data=[convert(r) for r in rows[:limit]], next=next_cursor(rows, limit, key))


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """Return the last key of the previous page; raises ValueError on a cursor we did not issue."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        key = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, UnicodeEncodeError) as exc:
        raise ValueError("not a cursor issued by this API") from exc
    if "\x00" in key:  # no id holds one (and PostgreSQL text cannot)
        raise ValueError("not a cursor issued by this API")
    return key


def next_cursor(rows: Sequence[Any], limit: int, key: CursorKey) -> str | None:
    """Callers fetch ``limit + 1`` rows; a cursor is issued only when there is a further page."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(key(last) if callable(key) else str(getattr(last, key)))


def keyset(*parts: str) -> str:
    """A cursor key of several columns (a sort on more than one): decoded by :func:`decode_keyset`."""
    return orjson.dumps(list(parts)).decode()


def decode_keyset(cursor: str, size: int) -> list[str]:
    """The ``size`` parts of a :func:`keyset` cursor; raises ValueError on a cursor we did not issue."""
    try:
        parts = orjson.loads(decode_cursor(cursor))
    except orjson.JSONDecodeError as exc:
        raise ValueError("not a cursor issued by this API") from exc
    if not isinstance(parts, list) or len(parts) != size or not all(isinstance(p, str) for p in parts):
        raise ValueError("not a cursor issued by this API")
    return parts


def paginate(stmt: Select[R], key: InstrumentedAttribute[str], *, limit: int, after: str | None) -> Select[R]:
    """``stmt`` as one keyset page: ordered by ``key`` (a unique column), past the ``after``
    cursor, ``limit + 1`` rows so that :meth:`Page.of` can tell whether a further page exists."""
    stmt = stmt.order_by(key).limit(limit + 1)
    return stmt.where(key > decode_cursor(after)) if after else stmt
