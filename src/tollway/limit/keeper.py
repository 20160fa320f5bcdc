"""The limits of one running app (``app.state.limits``): its counter backend, and the three
moments counters change or are read — a batch stored, an event voided, a check.

Redis failures never fail ingestion or a void: they are logged, and the counters are seeded again
once Redis answers. A check that cannot reach Redis falls back to the database (the meter's usage
query, exact but slower) or, with ``TOLLWAY_LIMITS_REDIS_FALLBACK=allow``, lets the request
through (``reason: "limits_unavailable"``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tollway.config import Settings
from tollway.errors import ValidationFailed
from tollway.limit import service, tally
from tollway.limit.counters import Conn, CounterBackend, DatabaseCounters, RedisCounters
from tollway.limit.profile import Profile
from tollway.limit.tally import CounterKey
from tollway.meter import rollup
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import Dialect, dialect_for
from tollway.models import Event

log = logging.getLogger("tollway.limit")


def _redis_errors() -> tuple[type[Exception], ...]:
    try:
        from redis import RedisError
    except ImportError:  # pragma: no cover - redis is a dependency
        return (ConnectionError,)
    return (RedisError, ConnectionError, OSError)


REDIS_ERRORS = _redis_errors()


@dataclass
class PreparedBatch:
    """The profiles of a batch's limited customers, read inside the batch's transaction."""

    keeper: LimitKeeper
    profiles: dict[str, Profile]
    meters: list[MeterDefinition]

    def rows_sql(self, d: Dialect, source: str) -> str | None:
        return tally.rows_sql(d, self.meters, tally.limited_customers(self.profiles), source)

    def count(self, conn: Conn, raw_rows: Sequence[Sequence[Any]], now: datetime) -> Callable[[], None] | None:
        """Add the batch's rows to the counters; returns how to take them off again should the
        transaction fail to commit (Redis only; the database rolls back with the batch)."""
        rows = [tally.to_row(r) for r in raw_rows]
        added = tally.increments(rows, self.profiles, now=now, last=self.keeper.windows)
        if not added:
            return None
        totals = self.keeper.add(conn, added, self.profiles, tally.thresholds(added, self.profiles))
        if totals is None:
            return None
        for entry, key, total in tally.crossings(totals, added, self.profiles):
            service.reached(conn, entry, key, total)
        if isinstance(self.keeper.backend, DatabaseCounters):
            return None
        negated = {k: -v for k, v in added.items()}

        def undo() -> None:
            self.keeper.add(conn, negated, self.profiles)

        return undo


class LimitKeeper:
    def __init__(self, backend: CounterBackend, *, fallback: str = "database") -> None:
        self.backend = backend
        self.fallback = fallback
        self.windows: tally.Windows = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> LimitKeeper:
        backend: CounterBackend
        if settings.redis_url:
            backend = RedisCounters(settings.redis_url, settings.redis_prefix)
        else:
            backend = DatabaseCounters()
        return cls(backend, fallback=settings.limits_redis_fallback)

    # -- Redis-tolerant primitives -------------------------------------------------------------
    def _missed(self, exc: Exception) -> None:
        if isinstance(self.backend, RedisCounters):
            self.backend.note_missed(exc)
        log.warning("limit counters not updated: %s", exc)

    def add(
        self,
        conn: Conn,
        added: Mapping[CounterKey, Decimal],
        profiles: Mapping[str, Profile],
        thresholds: Mapping[CounterKey, Decimal] | None = None,
    ) -> dict[CounterKey, Decimal] | None:
        try:
            return self.backend.add(conn, added, profiles, thresholds or {})
        except REDIS_ERRORS as exc:
            self._missed(exc)
            return None

    # -- ingestion -----------------------------------------------------------------------------
    def prepare(self, conn: Conn, customers: set[str], meters: list[MeterDefinition]) -> PreparedBatch | None:
        if not meters or not customers:
            return None
        try:
            profiles = self.backend.load_profiles(conn, customers)
        except REDIS_ERRORS as exc:
            self._missed(exc)
            return None
        keys = {m.key for m in meters}
        profiles = {c: p for c, p in profiles.items() if p.meters() & keys}
        return PreparedBatch(self, profiles, meters) if profiles else None

    # -- void ----------------------------------------------------------------------------------
    def on_void(self, session: Session, event: Event, now: datetime) -> None:
        """Take a newly voided event off the counters of its customer's current windows."""
        rollup.lock_exclusive(session)
        prepared = self.prepare(session, {event.customer}, rollup.load_meters(session, {event.type}))
        if prepared is None:
            return
        d = dialect_for(session.get_bind().dialect.name)
        limited = tally.limited_customers(prepared.profiles)
        sql = tally.rows_sql(d, prepared.meters, limited, "events", [f"e.id = {d.bind(event.id)}"])
        if sql is None:
            return
        rows = [tally.to_row(r) for r in session.execute(text(sql), d.params)]
        taken = tally.increments(rows, prepared.profiles, now=now, sign=-1)
        self.add(session, taken, prepared.profiles)

    # -- check ---------------------------------------------------------------------------------
    def used(self, session: Session, profile: Profile, now: datetime) -> dict[CounterKey, Decimal] | None:
        """The current windows' counters; ``None`` when Redis is down and the fallback is to allow."""
        keys = service.current_keys(profile, now)
        try:
            stored, values = self.backend.read(session, profile.customer, list(keys.values()))
            if stored is None or not stored.fresh or stored.version != profile.version:
                values = service.seed(session, self.backend, profile, now)
            return {k: values.get(k, Decimal(0)) for k in keys.values()}
        except REDIS_ERRORS as exc:
            log.warning("limits check: Redis unreachable (%s); %s", exc, self.fallback)
            if self.fallback == "allow":
                return None
            return service.measure(session, profile, keys)

    def decide(
        self, session: Session, customer_id: str, meter: str | None, quantity: Decimal, now: datetime
    ) -> service.Decision:
        found = service.standing(session, customer_id, now)
        if found is None:
            raise ValidationFailed.field("customer", f"customer '{customer_id}' does not exist")
        service.check_meter(session, meter)
        profile, subscribed = found.profile, found.subscribed
        entries = [e for e in profile.entries if meter is None or e.meter == meter]
        used = self.used(session, profile, now) if entries else {}
        unavailable = used is None
        states: list[service.LimitState] = []
        for entry in entries:
            bounds = entry.bounds(now, profile.tz)
            assert bounds is not None  # the subscription is active now
            if used is not None:
                key = CounterKey(profile.customer, entry.meter, entry.window, bounds[0], bounds[1])
                states.append(service.LimitState(entry, used.get(key, Decimal(0)), bounds[0], bounds[1]))
        blocked = any(s.entry.action == "block" and s.used + quantity > s.entry.max for s in states)
        if blocked:
            return service.Decision(False, "limit_reached", states)
        # Prepaid only (the billing type came with the standing: no query for anyone else); read
        # from the database, so it holds while Redis is down too.
        if subscribed and found.prepaid and service.credits_exhausted(session, customer_id, now):
            return service.Decision(False, "credits_exhausted", states)
        if unavailable:
            return service.Decision(True, "limits_unavailable", [])
        return service.Decision(True, None if subscribed else "no_subscription", states)
