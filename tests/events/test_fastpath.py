"""The fast path of ``POST /v1/events`` accepts only what the general path accepts, as the same
values; everything else goes to the general path (``None``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.event.fastpath import decode_batch
from tollway.event.ingest import IncomingEvent, validate_event

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)

_text = st.one_of(st.text(min_size=0, max_size=5), st.text(min_size=199, max_size=202), st.integers(), st.none())
_timestamp = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=30),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(
        [
            "2026-01-05T10:00:00Z",
            "2026-01-05t10:00:00z",
            "2026-01-05 10:00:00Z",
            "2026-01-05T10:00:00.123456789Z",
            "2026-01-05T10:00:00.5+05:30",
            "2026-02-30T10:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-01-05T10:00:00",
        ]
    ),
)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
_properties = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=5), _scalar, max_size=4),
    st.dictionaries(st.text(max_size=3), st.lists(_scalar, max_size=2), max_size=2),
    st.lists(_scalar, max_size=2),
    st.text(max_size=3),
)


@st.composite
def _event(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for name, strategy in (
        ("id", _text),
        ("customer", _text),
        ("type", _text),
        ("timestamp", _timestamp),
        ("properties", _properties),
    ):
        if draw(st.integers(0, 9)):  # mostly present
            event[name] = draw(strategy)
    return event


_valid_event = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=8),
        "customer": st.text(min_size=1, max_size=8),
        "type": st.sampled_from(["api", "job"]),
    },
    optional={
        "timestamp": st.one_of(
            st.none(), st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()), _timestamp
        ),
        "properties": st.one_of(st.none(), st.dictionaries(st.text(max_size=5), _scalar, max_size=4)),
    },
)


def _general(body: bytes) -> list[Any]:
    return [validate_event(raw, NOW, check_nul=b"\\u0000" in body) for raw in orjson.loads(body)["events"]]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_valid_event, _valid_event, _event()), min_size=1, max_size=4))
def test_fast_path_agrees_with_the_general_path(events: list[dict[str, Any]]) -> None:
    try:
        body = orjson.dumps({"events": events})
    except orjson.JSONEncodeError:  # an integer past 64 bits: not a body a client could send us
        return
    fast = decode_batch(body, NOW, 1000)
    if fast is not None:
        assert fast == _general(body)
        assert all(e.timestamp.tzinfo is UTC for e in fast)


def test_the_usual_batch_takes_the_fast_path() -> None:
    events = [
        {"id": f"e{i}", "customer": "c", "type": "api", "timestamp": "2026-01-05T10:00:00.25+02:00",
         "properties": {"n": i, "ok": True, "x": 1.5, "s": "é", "none": None}}
        for i in range(3)
    ] + [{"id": "no-time", "customer": "c", "type": "api"}]  # fmt: skip
    body = orjson.dumps({"events": events})
    fast = decode_batch(body, NOW, 1000)
    assert fast is not None and fast == _general(body)
    assert fast[0].timestamp == datetime(2026, 1, 5, 8, 0, 0, 250000, tzinfo=UTC)
    assert fast[3] == IncomingEvent("no-time", "c", "api", NOW, {})


def test_anything_else_takes_the_general_path() -> None:
    good = {"id": "a", "customer": "c", "type": "t"}
    for body in (
        orjson.dumps({"events": [good, {**good, "id": ""}]}),  # an error to report
        orjson.dumps({"events": [{**good, "id": "x" * 201}]}),
        orjson.dumps({"events": [{**good, "properties": {"deep": {"a": 1}}}]}),  # nested
        b'{"events": [{"id": "a", "customer": "c", "type": "t", "properties": {"n": 18446744073709551616}}]}',
        orjson.dumps({"events": [{**good, "properties": {"s": "nul\x00"}}]}),
        orjson.dumps({"events": [{**good, "timestamp": "2026-01-05T10:00:00.123456789Z"}]}),
        orjson.dumps({"events": [{**good, "timestamp": "2026-01-05 10:00:00Z"}]}),
        orjson.dumps({"events": [{**good, "timestamp": "2026-02-30T10:00:00Z"}]}),
        orjson.dumps(good),  # a single event
        b'{"events": [',
    ):
        assert decode_batch(body, NOW, 1000) is None, body
    assert decode_batch(orjson.dumps({"events": [good, {**good, "id": "b"}]}), NOW, 1) is None  # too many
