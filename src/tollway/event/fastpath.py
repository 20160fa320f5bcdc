"""The common case of ``POST /v1/events``, decoded and validated in C.

A batch in our own shape whose events are all valid and whose properties are flat (text,
numbers, booleans, null) is decoded by msgspec straight into typed records: ids, customers and
types are checked for length while decoding, and timestamps of the usual RFC 3339 form are parsed
by ``datetime.fromisoformat``. Anything else — an invalid event, nested properties, a number
orjson would read differently, a ``\\u0000`` escape, another timestamp form, more events than
allowed — returns ``None``, and the request takes the general path (orjson and
:func:`tollway.event.ingest.validate_event`), which reports errors field by field. So this path
only ever accepts what the general one accepts, as the same values (tests/events/test_fastpath.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from tollway.event.ingest import MAX_ID_LENGTH, IncomingEvent

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
# orjson (the general path) reads integers past 64 bits as floats: leave those (and any past
# what msgspec can bound, int64) to it.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Scalar = str | _Int | float | bool | None

# A strict subset of kit.time's RFC 3339 form (ASCII digits, "T", at most 6 fractional digits,
# "Z" or an offset), on which parse_rfc3339 and datetime.fromisoformat agree.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


# gc=False: these records hold text, scalars and a flat dict, so they can be in no reference
# cycle; the garbage collector need not track them (thousands per batch).
class _Event(msgspec.Struct, gc=False):
    id: _Text
    customer: _Text
    type: _Text
    timestamp: str | None = None
    properties: dict[str, _Scalar] | None = None


class _Batch(msgspec.Struct, gc=False):
    events: list[_Event]


_decoder = msgspec.json.Decoder(_Batch)


def decode_batch(body: bytes, now: datetime, max_events: int) -> list[IncomingEvent] | None:
    """The events of a valid native batch, or None when the general path must decide."""
    if b"\\u0000" in body:
        return None
    try:
        batch = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    events = batch.events
    if len(events) > max_events:
        return None
    out: list[IncomingEvent] = []
    append, fullmatch, fromisoformat = out.append, _TIMESTAMP.fullmatch, datetime.fromisoformat
    try:
        for e in events:
            raw_ts = e.timestamp
            if raw_ts is None:
                timestamp = now
            elif fullmatch(raw_ts) is None:
                return None
            else:
                timestamp = fromisoformat(raw_ts)
                if timestamp.tzinfo is not UTC:
                    timestamp = timestamp.astimezone(UTC)
            append(IncomingEvent(e.id, e.customer, e.type, timestamp, e.properties or {}))
    except (ValueError, OverflowError):  # not a date (February 30th), or out of range in UTC
        return None
    return out
