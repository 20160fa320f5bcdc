"""Ingestion behind one small interface: validate → dedup → store.

The HTTP layer turns a request body into a list of raw JSON objects and calls :func:`ingest`. The
storage side is an :class:`EventSink`; today it writes straight into the SQL event store, and a
durable log (NATS JetStream, Kafka) can be put in front of it by providing another sink, without
touching the API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import msgspec

from tollway.kit.inputs import MAX_DEPTH, nesting_exceeds
from tollway.kit.time import parse_rfc3339

MAX_ID_LENGTH = 200


class IncomingEvent(
    msgspec.Struct, gc=False, rename={"customer": "c", "type": "t", "timestamp": "ts", "properties": "p"}
):
    """A valid event, as the sinks store it. A msgspec struct: built in C (thousands per batch),
    not tracked by the garbage collector (JSON data holds no reference cycles), and encoded in C
    as the PostgreSQL store's batch document, whose short keys ``rename`` gives
    (``event.store``)."""

    id: str
    customer: str
    type: str
    timestamp: datetime
    properties: dict[str, Any]


@dataclass(slots=True)
class EventError:
    index: int
    id: str | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "field": self.field, "message": self.message}


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[EventError] = field(default_factory=list)

    def count_stored(self, sent: int, stored: int) -> None:
        """``sent`` valid events went to the store, which stored ``stored`` (the rest it had)."""
        self.accepted = stored
        self.duplicates += sent - stored

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "errors": [e.as_dict() for e in self.errors],
        }


class EventSink(Protocol):
    """Durably stores events. Returns how many were new; ids already stored are skipped.

    Once ``store`` returns, the events must survive a crash (the API answers 202 after it).
    ``ingested_at`` is this host's clock; a store on a shared database records the database's
    clock instead (``db.database_now``), the one billing cutoffs are taken from.
    """

    def store(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int: ...


@runtime_checkable
class AwaitedSink(EventSink, Protocol):
    """A sink that can also store without blocking the event loop (``event.store``)."""

    def awaits_here(self) -> bool:
        """Whether :meth:`store_async` awaits the store on the running loop (no thread)."""
        ...

    async def store_async(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int: ...


# Field names as the sender wrote them: our own event shape, or CloudEvents 1.0.
NATIVE_FIELDS = {
    "id": "id",
    "customer": "customer",
    "type": "type",
    "timestamp": "timestamp",
    "properties": "properties",
}
CLOUDEVENT_FIELDS = {
    "id": "id",
    "customer": "subject",
    "type": "type",
    "timestamp": "time",
    "properties": "data",
}


def _text(raw: dict[str, Any], name: str, required: bool) -> tuple[str | None, str | None]:
    value = raw.get(name)
    if value is None:
        return None, (f"'{name}' is required" if required else None)
    if not isinstance(value, str):
        return None, f"'{name}' must be a string"
    if not value or len(value) > MAX_ID_LENGTH:
        return None, f"'{name}' must be 1 to {MAX_ID_LENGTH} characters"
    if "\x00" in value:
        return None, f"'{name}' must not contain NUL characters"
    return value, None


def validate_event(
    raw: Any, now: datetime, names: dict[str, str] = NATIVE_FIELDS, check_nul: bool = True
) -> IncomingEvent | tuple[str | None, str, str]:
    """Return a valid event, or (id, field, message) for the first problem found.

    ``check_nul=False`` skips the scan of properties for NUL characters (which PostgreSQL cannot
    store); the HTTP layer passes it when the raw body holds no ``\\u0000`` escape at all.
    """
    if not isinstance(raw, dict):
        return None, "", "an event must be a JSON object"
    raw_id = raw.get(names["id"])
    shown_id = raw_id if isinstance(raw_id, str) else None
    if names is CLOUDEVENT_FIELDS:
        spec = raw.get("specversion")
        if spec != "1.0":
            return shown_id, "specversion", "CloudEvents 'specversion' must be \"1.0\""
    values: dict[str, str] = {}
    for logical in ("id", "customer", "type"):
        value, problem = _text(raw, names[logical], required=True)
        if problem:
            return shown_id, names[logical], problem
        assert value is not None
        values[logical] = value
    ts_raw = raw.get(names["timestamp"])
    if ts_raw is None:
        timestamp = now
    elif not isinstance(ts_raw, str):
        return shown_id, names["timestamp"], f"'{names['timestamp']}' must be an RFC 3339 string"
    else:
        try:
            timestamp = parse_rfc3339(ts_raw)
        except ValueError as exc:
            return shown_id, names["timestamp"], str(exc)
    props = raw.get(names["properties"])
    if props is None:
        props = {}
    elif not isinstance(props, dict):
        return shown_id, names["properties"], f"'{names['properties']}' must be a JSON object"
    if check_nul and _contains_nul(props):
        return shown_id, names["properties"], "must not contain NUL characters (\\u0000)"
    if nesting_exceeds(props):
        # PostgreSQL's batch encoder and the API's response encoder stop at a few hundred levels.
        return shown_id, names["properties"], f"nests objects and arrays more than {MAX_DEPTH} levels deep"
    return IncomingEvent(values["id"], values["customer"], values["type"], timestamp, props)


Screen = Callable[[Sequence[IncomingEvent]], dict[str, tuple[str, str]]]


def _positions(raw_events: Sequence[Any], names: dict[str, str], ids: set[str]) -> dict[str, int]:
    """Index in the request of the first event with each of ``ids``."""
    out: dict[str, int] = {}
    for i, raw in enumerate(raw_events):
        if isinstance(raw, IncomingEvent):
            value: Any = raw.id
        else:
            value = raw.get(names["id"]) if isinstance(raw, dict) else None
        if isinstance(value, str) and value in ids and value not in out:
            out[value] = i
    return out


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def ingest(
    sink: EventSink,
    raw_events: Sequence[Any],
    *,
    now: datetime,
    names: dict[str, str] = NATIVE_FIELDS,
    field_prefix: Callable[[int], str] = lambda i: f"events[{i}].",
    check_nul: bool = True,
    screen: Screen | None = None,
) -> IngestResult:
    """Validate every event, drop repeats within the batch, store the rest; never all-or-nothing
    (:func:`check_events`, then the sink)."""
    result, valid = check_events(
        raw_events, now=now, names=names, field_prefix=field_prefix, check_nul=check_nul, screen=screen
    )
    if valid:
        result.count_stored(len(valid), sink.store(valid, now))
    return result


def check_events(
    raw_events: Sequence[Any],
    *,
    now: datetime,
    names: dict[str, str] = NATIVE_FIELDS,
    field_prefix: Callable[[int], str] = lambda i: f"events[{i}].",
    check_nul: bool = True,
    screen: Screen | None = None,
) -> tuple[IngestResult, list[IncomingEvent]]:
    """The result so far (each invalid event's error, repeats within the batch counted as
    duplicates) and the events to store. ``screen`` may refuse valid events
    (``{id: (field, message)}``): a customer-scoped key's events for others, events too late to
    bill (``tollway.limit.protect``). ``raw_events`` may also be events validated already
    (``event.fastpath``)."""
    result = IngestResult()
    valid: list[IncomingEvent] = []
    seen: set[str] = set()
    in_batch_repeats = 0
    for index, raw in enumerate(raw_events):
        checked = raw if isinstance(raw, IncomingEvent) else validate_event(raw, now, names, check_nul)
        if isinstance(checked, IncomingEvent):
            if checked.id in seen:
                in_batch_repeats += 1
                continue
            seen.add(checked.id)
            valid.append(checked)
        else:
            event_id, name, message = checked
            result.errors.append(EventError(index, event_id, f"{field_prefix(index)}{name}".rstrip("."), message))
    if valid and screen is not None:
        refused = screen(valid)
        if refused:
            positions = _positions(raw_events, names, set(refused))
            for event in valid:
                if event.id in refused:
                    name, message = refused[event.id]
                    at = positions[event.id]
                    result.errors.append(EventError(at, event.id, f"{field_prefix(at)}{name}".rstrip("."), message))
            result.errors.sort(key=lambda e: e.index)
            valid = [e for e in valid if e.id not in refused]
    result.duplicates = in_batch_repeats
    return result, valid
