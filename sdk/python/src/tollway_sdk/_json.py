"""JSON encoding shared by the client and the encryption helpers."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any


def rfc3339(value: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with a ``Z`` suffix; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: pass an aware datetime (e.g. datetime.now(timezone.utc))")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


_second_cache: tuple[int, str] = (-1, "")


def utc_now_rfc3339() -> str:
    """The current UTC time in the same format as :func:`rfc3339`, about 5x faster.

    The ``YYYY-MM-DDTHH:MM:SS`` part is cached per second; only the microseconds
    are formatted on each call (this runs once per tracked event).
    """
    global _second_cache
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _second_cache
    if cached[0] != seconds:
        cached = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        _second_cache = cached
    return f"{cached[1]}.{micros:06d}Z"


# Decimal values are written as JSON numbers with their exact digits ("12.50"
# stays 12.50, never rounded through a binary float), so that meters can sum
# them. The stdlib encoder cannot emit raw number text, so ``default`` writes a
# marker string carrying a per-process random token, and the markers are
# replaced by the bare digits afterwards. Without the token no string that came
# from the caller's data can be mistaken for a marker.
_TOKEN = os.urandom(12).hex()
_MARKER = re.compile(r'"\\u0000' + _TOKEN + r':(-?[0-9][0-9.E+\-]*)\\u0000"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite decimal")
        return f"\x00{_TOKEN}:{value}\x00"
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default)

# CPython's C encoder, built once instead of on every call as JSONEncoder.encode
# does (this runs once per tracked event). Without circular-reference markers, so
# that concurrent calls share nothing; a cycle ends in RecursionError, reported
# as ValueError below. Other Pythons fall back to the encoder above.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (
    _c_make_encoder(None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    if _c_make_encoder is not None
    else None
)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; NaN/Infinity are refused because they are not JSON."""
    if _C_ENCODE is not None:
        try:
            text = "".join(_C_ENCODE(value, 0))
        except RecursionError as exc:
            raise ValueError("value is nested too deeply or contains a cycle") from exc
    else:  # pragma: no cover - non-CPython
        text = _ENCODER.encode(value)
    if _TOKEN in text:
        text = _MARKER.sub(r"\1", text)
    return text.encode("utf-8")
