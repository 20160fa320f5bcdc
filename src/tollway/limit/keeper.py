"""The limits of one running app (``app.state.limits``, and the worker's own): its counter
backend, and the three moments counters change or are read — the worker folding pending events
in, an event voided, a check.

Ingestion does nothing for the limits: a stored event is pending (``meter.sql.pending``) as it
is for every meter, and the worker folds them into the counters with the rollups, thousands
at a time (:meth:`LimitKeeper.fold`), so concurrent batches never contend on counters. A check
adds the customer's pending events to the counters it reads, so ``used`` has no lag.

Redis failures never fail ingestion, a fold or a void: they are logged, and the counters are
seeded again once Redis answers. A check that cannot reach Redis falls back to the database (the meter's usage
query, exact but slower) or, with ``TOLLWAY_LIMITS_REDIS_FALLBACK=allow``, lets the request
through (``reason: "limits_unavailable"``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from tollway.config import Settings
from tollway.db import database_now
from tollway.errors import ValidationFailed
from tollway.limit import service, tally
from tollway.limit.counters import Conn, CounterBackend, DatabaseCounters, RedisCounters
from tollway.limit.profile import Profile
from tollway.limit.tally import EXACT, CounterKey
from tollway.meter import rollup
from tollway.meter.definition import MeterDefinition
from tollway.meter.fold import FoldedBatch
from tollway.meter.sql import dialect_for, pending
from tollway.models import Event

log = logging.getLogger("tollway.limit")


def _redis_errors() -> tuple[type[Exception], ...]:
    try:
        from redis import RedisError
    except ImportError:  # pragma: no cover - redis is a dependency
        return (ConnectionError,)
    return (RedisError, ConnectionError, OSError)


REDIS_ERRORS = _redis_errors()


FOLD_LOCK = 7_404_180
"""Advisory lock (PostgreSQL) a fold holds exclusively from adding to the counters until its
transaction ends, and a check that counts pending events holds shared while it reads: the
check's counters and pending events then come from the same side of every fold (two statements,
or the database and Redis, read as one). SQLite needs none: its transactions are serial."""


def _lock_fold(conn: Conn, *, shared: bool) -> None:
    if dialect_for(_dialect_name(conn)).name == "postgresql":
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(text(f"SELECT {fn}(:k)"), {"k": FOLD_LOCK})


def _dialect_name(conn: Conn) -> str:
    return (conn.get_bind() if isinstance(conn, Session) else conn).dialect.name


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

    # -- the worker's fold ------------------------------------------------------------------
    def prepare(self, conn: Conn, customers: set[str], meters: list[MeterDefinition]) -> dict[str, Profile]:
        """The stored profiles of ``customers`` that limit one of ``meters``."""
        if not meters or not customers:
            return {}
        try:
            profiles = self.backend.load_profiles(conn, customers)
        except REDIS_ERRORS as exc:
            self._missed(exc)
            return {}
        keys = {m.key for m in meters}
        return {c: p for c, p in profiles.items() if p.meters() & keys}

    def fold(self, conn: Conn, batch: FoldedBatch) -> Callable[[], None] | None:
        """Add the events the worker is rolling up (``fold.apply_pending``, same transaction)
        to the counters; returns how to take them off again should the transaction fail to
        commit (Redis only; the database rolls back with it). From the commit on, checks read
        them from the counters instead of as pending events. The events are read only when one
        of the batch's customers has limits on a meter."""
        if not batch.customers:
            return None
        d = dialect_for(_dialect_name(conn))
        meters = rollup.load_meters(conn)
        profiles = self.prepare(conn, set(batch.customers), meters)
        if not profiles:
            return None
        sql = tally.rows_sql(d, meters, tally.limited_customers(profiles), batch.events(), ["e.voided_at IS NULL"])
        if sql is None:
            return None
        rows = [tally.to_row(r) for r in conn.execute(text(sql), d.params)]
        added = tally.increments(rows, profiles, now=database_now(conn), last=self.windows)
        if not added:
            return None
        _lock_fold(conn, shared=False)
        totals = self.add(conn, added, profiles, tally.thresholds(added, profiles))
        if totals is None:
            return None
        for entry, key, total in tally.crossings(totals, added, profiles):
            service.reached(conn, entry, key, total)
        if isinstance(self.backend, DatabaseCounters):
            return None
        negated = {k: -v for k, v in added.items()}

        def undo() -> None:
            self.add(conn, negated, profiles)

        return undo

    def folding(self, undo: list[Callable[[], None]]) -> Callable[[Conn, FoldedBatch], None]:
        """:meth:`fold` for ``fold.apply_pending``, collecting the undo steps in ``undo``."""

        def fold(conn: Conn, batch: FoldedBatch) -> None:
            step = self.fold(conn, batch)
            if step is not None:
                undo.append(step)

        return fold

    # -- void ----------------------------------------------------------------------------------
    def on_void(self, session: Session, event: Event, now: datetime) -> None:
        """Take a newly voided event off the counters of its customer's current windows, once
        folded (a pending one is skipped by the fold and by checks: nothing to take off)."""
        rollup.lock_exclusive(session)
        is_pending = f"SELECT 1 FROM events e WHERE e.id = :id AND {pending('e')}"  # noqa: S608 - constant SQL
        pending_row = session.execute(text(is_pending), {"id": event.id})
        if pending_row.first() is not None:
            return
        meters = rollup.load_meters(session, {event.type})
        profiles = self.prepare(session, {event.customer}, meters)
        if not profiles:
            return
        d = dialect_for(session.get_bind().dialect.name)
        limited = tally.limited_customers(profiles)
        sql = tally.rows_sql(d, meters, limited, "events", [f"e.id = {d.bind(event.id)}"])
        if sql is None:
            return
        rows = [tally.to_row(r) for r in session.execute(text(sql), d.params)]
        taken = tally.increments(rows, profiles, now=now, sign=-1)
        self.add(session, taken, profiles)

    # -- check ---------------------------------------------------------------------------------
    def used(
        self, session: Session, profile: Profile, now: datetime, *, pending: bool = True
    ) -> dict[CounterKey, Decimal] | None:
        """The current windows' counters plus the customer's pending events (skipped when the
        check's standing saw none); ``None`` when Redis is down and the fallback is to allow."""
        keys = service.current_keys(profile, now)
        try:
            stored, values = self.backend.read(session, profile.customer, list(keys.values()))
            if stored is None or not stored.fresh or stored.version != profile.version:
                values = service.seed(session, self.backend, profile, now)
            elif pending:
                # Counters and pending events from the same side of every fold: read again under
                # the fold lock (no fold commits until this transaction ends).
                _lock_fold(session, shared=True)
                stored, values = self.backend.read(session, profile.customer, list(keys.values()))
                if stored is None or not stored.fresh or stored.version != profile.version:
                    # Changed since the first read: exact from the events; the next check seeds.
                    return service.measure(session, profile, keys)
                for key, value in service.pending_usage(session, profile, keys, now).items():
                    values[key] = EXACT.add(values.get(key, Decimal(0)), value)
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
        used = self.used(session, profile, now, pending=found.pending) if entries else {}
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
