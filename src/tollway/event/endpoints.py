"""``POST /v1/events``: our event shape (single or batch) and CloudEvents 1.0 (structured, batch)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from tollway.auth.dependencies import require_admin, require_ingest
from tollway.auth.gate import admitted
from tollway.db import database_now
from tollway.deps import SessionDep
from tollway.errors import FieldError, PayloadTooLarge, TollwayError, ValidationFailed
from tollway.event import service
from tollway.event.fastpath import decode_batch
from tollway.event.ingest import (
    CLOUDEVENT_FIELDS,
    NATIVE_FIELDS,
    AwaitedSink,
    IncomingEvent,
    IngestResult,
    Screen,
    check_events,
    ingest,
)
from tollway.event.schemas import (
    EventOut,
    EventPage,
    IngestResponse,
    StoredEvent,
    UnknownCustomers,
    ingest_request_body,
)
from tollway.kit.listing import ListParams, list_params, time_param
from tollway.kit.pagination import Page
from tollway.kit.time import utcnow
from tollway.limit import protect

router = APIRouter(prefix="/v1/events", tags=["events"])

CE_SINGLE = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if declared and declared.isdigit() and int(declared) > limit and encoding == "identity":
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # compressed input larger than the limit cannot inflate to less
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if encoding in ("identity", ""):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise TollwayError(
            f"unsupported Content-Encoding '{encoding}' (use gzip)", status=415, code="unsupported_encoding"
        )
    wbits = 31 if encoding != "deflate" else 15
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes after decompression")
        if not inflater.eof:
            raise ValidationFailed.field("body", f"truncated {encoding} stream")
    except zlib.error as exc:
        raise ValidationFailed.field("body", f"invalid {encoding} data: {exc}") from exc
    return out


def _split(payload: Any, content_type: str, max_events: int) -> tuple[list[Any], dict[str, str], bool]:
    """Return (raw events, field names, is_batch)."""
    if content_type == CE_BATCH:
        if not isinstance(payload, list):
            raise ValidationFailed.field("body", "a CloudEvents batch must be a JSON array")
        events, names, batch = payload, CLOUDEVENT_FIELDS, True
    elif content_type == CE_SINGLE:
        events, names, batch = [payload], CLOUDEVENT_FIELDS, False
    elif isinstance(payload, dict) and "events" in payload:
        if not isinstance(payload["events"], list):
            raise ValidationFailed.field("events", "must be an array of events")
        events, names, batch = payload["events"], NATIVE_FIELDS, True
    elif isinstance(payload, dict):
        events, names, batch = [payload], NATIVE_FIELDS, False
    else:
        raise ValidationFailed.field("body", 'must be an event object or {"events": [...]}')
    if len(events) > max_events:
        raise PayloadTooLarge(f"a batch holds at most {max_events} events; got {len(events)}")
    return events, names, batch


@router.post(
    "",
    status_code=202,
    response_model=IngestResponse,
    dependencies=[Depends(require_ingest)],
    summary="Ingest usage events (single, batch, or CloudEvents)",
    openapi_extra={"requestBody": ingest_request_body(1000)},
)
async def post_events(request: Request) -> Response:
    settings = request.app.state.settings
    body = await _read_body(request, settings.max_body_bytes)
    content_type = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    now = utcnow()
    # A valid batch of flat events is decoded and validated in C; anything else (errors to
    # report, other shapes) takes the general path below.
    fast = None if content_type in (CE_SINGLE, CE_BATCH) else decode_batch(body, now, settings.max_events_per_batch)
    events: Sequence[Any]
    if fast is not None:
        events, names, batch = fast, NATIVE_FIELDS, True
    else:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed.field("body", f"malformed JSON: {exc}") from exc
        events, names, batch = _split(payload, content_type, settings.max_events_per_batch)
    prefix = (
        (lambda i: f"events[{i}].")
        if batch and names is NATIVE_FIELDS
        else ((lambda i: f"[{i}].") if batch else (lambda i: ""))
    )
    screen = _screen(request, now)
    check = partial(
        check_events,
        events,
        now=now,
        names=names,
        field_prefix=prefix,
        check_nul=fast is None and b"\\u0000" in body,  # the fast path took no event with one
        screen=screen,
    )
    sink = request.app.state.event_sink
    result: IngestResult
    if isinstance(sink, AwaitedSink) and sink.awaits_here():
        # The store is awaited on the event loop; the events are checked here too when that
        # needs no thread: the fast path's are valid already, and no screen reads the database.
        result, valid = check() if fast is not None and screen is None else await run_in_threadpool(check)
        if valid:
            result.count_stored(len(valid), await sink.store_async(valid, now))
    else:  # checked and stored in one hand-off to the threadpool
        result = await run_in_threadpool(partial(ingest, sink, events, **check.keywords))
    if result.errors and result.accepted == 0 and result.duplicates == 0:
        raise ValidationFailed(
            "; ".join(f"{e.field}: {e.message}" for e in result.errors[:10]),
            [FieldError(e.field, e.message) for e in result.errors],
        )
    return Response(orjson.dumps(result.as_dict()), status_code=202, media_type="application/json")


def _screen(request: Request, now: datetime) -> Screen | None:
    """The protections that may refuse single events (off unless configured)."""
    scoped = admitted(request).customer
    days = request.app.state.settings.late_event_days
    if scoped is None and days is None:
        return None
    engine = request.app.state.engine

    def screen(valid: Sequence[IncomingEvent]) -> dict[str, tuple[str, str]]:
        refused = protect.other_customers(valid, scoped) if scoped is not None else {}
        if days is not None:
            rest = [e for e in valid if e.id not in refused]
            refused.update(protect.late_events(engine, rest, now=now, days=days))
        return refused

    return screen


@router.get("", response_model=EventPage, dependencies=[Depends(require_admin)], summary="List stored events")
def list_events(
    session: SessionDep,
    params: Annotated[ListParams, Depends(list_params)],
    customer: Annotated[str | None, Query(description="only this customer's events")] = None,
    type: Annotated[str | None, Query(description="only events of this type")] = None,
    from_: Annotated[str | None, Query(alias="from", description="RFC 3339: timestamp at or after")] = None,
    to: Annotated[str | None, Query(description="RFC 3339: timestamp before")] = None,
) -> EventPage:
    """Stored events, newest first (timestamp descending, then id descending), to see what an
    integration sent. ``customer_exists`` marks events whose customer does not exist."""
    filters = service.EventFilter(
        customer=customer, type=type, start=time_param("from", from_), end=time_param("to", to)
    )
    rows = service.list_events(session, filters, limit=params.limit + 1, after=params.after)
    page = Page[StoredEvent].of(rows, params.limit, lambda item: item.cursor, service.to_stored)
    unknown = [event for event in page.data if not event.customer_exists]
    return EventPage(
        data=page.data,
        next=page.next,
        unknown_customers=UnknownCustomers(customers=sorted({e.customer for e in unknown}), events=len(unknown)),
        customer_exists=service.customer_exists(session, customer) if customer is not None else None,
    )


@router.get("/{event_id}", response_model=EventOut, dependencies=[Depends(require_admin)])
def get_event(event_id: str, session: SessionDep) -> EventOut:
    return service.to_schema(service.get_event(session, event_id))


@router.post("/{event_id}/void", response_model=EventOut, dependencies=[Depends(require_admin)])
def void_event(event_id: str, request: Request, session: SessionDep) -> EventOut:
    limits = request.app.state.limits
    return service.to_schema(service.void_event(session, event_id, now=database_now(session), on_void=limits.on_void))
