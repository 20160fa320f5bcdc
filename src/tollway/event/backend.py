"""The event backend: what a store of events must do for Tollway, in one protocol.

Ingestion reaches the store through :class:`tollway.event.ingest.EventSink`; metering, billing
and the events list read it through the functions of ``meter.query``, ``meter.values`` and
``event.service``. :class:`EventBackend` gathers those operations so that another backend (a log
in front of a column store, see docs/scaling.md) has one interface to implement, and
``tests/conformance`` one interface to check: every operation must give the same answers as the
Python reference there, with or without its aggregates caught up (:meth:`EventBackend.settle`).

:class:`SqlEventBackend` is the first implementation: the SQL event store and the query
functions the application calls directly, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.engine import Engine

from tollway.db import database_now, make_sessionmaker, session_scope
from tollway.event.ingest import IncomingEvent
from tollway.event.schemas import EventOut
from tollway.event.service import EventFilter, changed_after, list_events, to_schema, void_event
from tollway.event.store import SqlEventStore
from tollway.kit.pagination import next_cursor
from tollway.meter import fold, rollup
from tollway.meter.definition import MeterDefinition
from tollway.meter.query import UsageValue, query_usage, usage_totals
from tollway.meter.schemas import MeterCreate
from tollway.meter.service import create_meter
from tollway.meter.values import event_values, meter_totals
from tollway.models import Event


@dataclass(frozen=True)
class EventPage:
    events: list[EventOut]
    next: str | None
    """The cursor of the next page (``after``), or None when this page is the last."""


class EventBackend(Protocol):
    """Stores events (:meth:`store`, the ``EventSink``) and answers every read of them.

    Times are tz-aware UTC. ``ingested_at`` and ``voided_at`` come from the backend's own clock
    (:meth:`clock`), the one billing cutoffs (``as_of``) are taken from: an event stored after
    ``clock()`` returned ``t`` has ``ingested_at > t``."""

    def store(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        """Store the events durably; ids already stored are skipped. Returns how many were new."""
        ...

    def clock(self) -> datetime:
        """The backend's current time, as ``ingested_at``/``voided_at`` and cutoffs use it."""
        ...

    def register_meter(self, meter: MeterDefinition) -> None:
        """Declare a meter, so the backend keeps whatever aggregates it reads it from."""
        ...

    def settle(self) -> None:
        """Bring the aggregates up to date with what is stored (the worker's job). Reads are
        exact before and after; this only moves work from read time to here."""
        ...

    def void(self, event_id: str) -> datetime | None:
        """Stop the event from counting, at :meth:`clock`; returns its ``voided_at`` (the first
        one when voided before), None when no event has that id."""
        ...

    def list_events(self, filters: EventFilter, *, limit: int, after: str | None = None) -> EventPage:
        """Stored events (voided ones too), newest first: timestamp descending, then id
        descending in byte order; ``after`` is a cursor this backend issued."""
        ...

    def usage(
        self,
        meter: MeterDefinition,
        *,
        start: datetime,
        end: datetime,
        customer: str | None = None,
        window: str | None = None,
        tz: ZoneInfo | None = None,
        group_by: Sequence[str] = (),
        as_of: datetime | None = None,
    ) -> list[UsageValue]:
        """The meter's value per window (aligned in ``tz``) and group, as ``meter.query.query_usage``."""
        ...

    def totals(self, meter: MeterDefinition, spans: Sequence[tuple[str, datetime, datetime]]) -> list[Decimal | None]:
        """The meter's live value over each ``(customer, start, end)``, as ``meter.query.usage_totals``."""
        ...

    def period_totals(
        self, meters: Sequence[MeterDefinition], *, start: datetime, end: datetime, customer: str, as_of: datetime
    ) -> dict[str, Decimal | None]:
        """Each meter's value over a billing period as of a cutoff, as ``meter.values.meter_totals``."""
        ...

    def event_values(
        self, meter: MeterDefinition, *, start: datetime, end: datetime, customer: str, as_of: datetime
    ) -> list[Decimal]:
        """Each counted event's value in event order (timestamp, id), as ``meter.values.event_values``."""
        ...

    def changed_after(self, customer: str, start: datetime, end: datetime, as_of: datetime) -> bool:
        """Whether an event of the customer in ``[start, end)`` was ingested or voided after
        ``as_of``: the period's invoice needs a correction."""
        ...


class SqlEventBackend:
    """:class:`EventBackend` on the SQL event store (SQLite or PostgreSQL). ``use_rollups=False``
    reads every value from the raw events, as while a meter's rollups are being built."""

    def __init__(self, engine: Engine, *, use_rollups: bool = True) -> None:
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self.sink = SqlEventStore(engine)
        self.use_rollups = use_rollups

    def _as_read(self, meter: MeterDefinition) -> MeterDefinition:
        return meter if self.use_rollups else dataclasses.replace(meter, rollups_ready=False)

    def _current(self, meter: MeterDefinition) -> MeterDefinition:
        """The meter as stored now (its rollups may be being built), read as this backend reads."""
        with self.sessions() as session:
            stored = {m.key: m for m in rollup.load_meters(session, {meter.event_type})}
        return self._as_read(stored.get(meter.key, meter))

    def store(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        return self.sink.store(events, ingested_at)

    def clock(self) -> datetime:
        with self.engine.connect() as conn:
            return database_now(conn)

    def register_meter(self, meter: MeterDefinition) -> None:
        data = MeterCreate(
            key=meter.key,
            event_type=meter.event_type,
            aggregation=meter.aggregation,
            value_property=meter.value_property,
            filters=list(meter.filters),  # type: ignore[arg-type]
            group_by=list(meter.group_by),
        )
        with session_scope(self.sessions) as session:
            create_meter(session, data)

    def settle(self) -> None:
        with self.sessions() as session:
            keys = rollup.building(session)
        for key in keys:
            done = False
            while not done:
                with session_scope(self.sessions) as session:
                    done = rollup.build_step(session, key)
        applied = 1
        while applied:
            with session_scope(self.sessions) as session:
                applied = fold.apply_pending(session)

    def void(self, event_id: str) -> datetime | None:
        with session_scope(self.sessions) as session:
            if session.get(Event, event_id) is None:
                return None
            return void_event(session, event_id, now=database_now(session)).voided_at

    def list_events(self, filters: EventFilter, *, limit: int, after: str | None = None) -> EventPage:
        with self.sessions() as session:
            rows = list_events(session, filters, limit=limit + 1, after=after)
        cursor = next_cursor(rows, limit, lambda item: item.cursor)  # as the API pages it
        return EventPage([to_schema(item.event) for item in rows[:limit]], cursor)

    def usage(
        self,
        meter: MeterDefinition,
        *,
        start: datetime,
        end: datetime,
        customer: str | None = None,
        window: str | None = None,
        tz: ZoneInfo | None = None,
        group_by: Sequence[str] = (),
        as_of: datetime | None = None,
    ) -> list[UsageValue]:
        current = self._current(meter)
        with self.sessions() as session:
            return query_usage(
                session,
                current,
                start=start,
                end=end,
                customer=customer,
                window=window,
                tz=tz,
                group_by=group_by,
                as_of=as_of,
                use_rollups=self.use_rollups,
            )

    def totals(self, meter: MeterDefinition, spans: Sequence[tuple[str, datetime, datetime]]) -> list[Decimal | None]:
        current = self._current(meter)
        with self.sessions() as session:
            return usage_totals(session, current, spans)

    def period_totals(
        self, meters: Sequence[MeterDefinition], *, start: datetime, end: datetime, customer: str, as_of: datetime
    ) -> dict[str, Decimal | None]:
        with self.sessions() as session:
            read = [self._as_read(m) for m in meters]  # count/sum through the rollups unless not use_rollups
            return meter_totals(session, read, start=start, end=end, customer=customer, as_of=as_of)

    def event_values(
        self, meter: MeterDefinition, *, start: datetime, end: datetime, customer: str, as_of: datetime
    ) -> list[Decimal]:
        with self.sessions() as session:
            values = event_values(session, meter, start=start, end=end, customer=customer, as_of=as_of)
        return values.get(None, [])

    def changed_after(self, customer: str, start: datetime, end: datetime, as_of: datetime) -> bool:
        late = exists().where(
            Event.customer == customer, Event.timestamp >= start, Event.timestamp < end, changed_after(as_of)
        )
        with self.sessions() as session:
            return bool(session.scalar(select(late)))
