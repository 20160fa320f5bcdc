"""Limits: the profile a customer's subscriptions give now, seeding its counters from the events,
and the check (``POST /v1/limits/check``).

Counters hold the events the worker has folded (``keeper.LimitKeeper.fold``, with the rollups);
the events still pending are counted raw by the check, as usage queries count them. A check reads
the counters of the windows containing now (one database query or one Redis round trip) after
comparing the stored profile with the one the subscriptions say now; when they differ (or Redis
lost the profile, or missed a fold) the counters are seeded again from the events under the
exclusive ingestion lock, so the answer is exact either way: ``used`` is the meter's value for
the window over every event stored before the check.

A ``prepaid`` customer (``customers.billing_type``, read by the same query) is also refused when
its ongoing credit balance is <= 0 (:func:`credits_exhausted`); other customers never pay for
that reading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tollway.credit.service import ongoing_balance
from tollway.errors import ValidationFailed
from tollway.invoice.errors import UnbillableUsage
from tollway.kit.fields import format_decimal
from tollway.kit.time import utcnow
from tollway.limit import tally
from tollway.limit.counters import CounterBackend, as_utc
from tollway.limit.profile import Cycle, Entry, Profile
from tollway.limit.tally import EXACT, CounterKey
from tollway.meter import rollup
from tollway.meter.definition import MeterDefinition
from tollway.meter.query import query_usage
from tollway.meter.sql import dialect_for, not_pending, pending
from tollway.models import Meter
from tollway.notification.outbox import emit_now

log = logging.getLogger("tollway.limit")


@dataclass(frozen=True)
class LimitState:
    entry: Entry
    used: Decimal
    start: datetime
    end: datetime

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.entry.max - self.used)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None
    limits: list[LimitState]


@dataclass(frozen=True)
class Standing:
    """What a check needs to know of a customer, read in one query."""

    customer: str
    timezone: str
    profile: Profile
    subscribed: bool
    prepaid: bool = False
    pending: bool = False  # some of the customer's events are not folded into the counters yet


_ACTIVE = (
    "SELECT c.timezone, c.billing_type, s.id, s.start, s.ends_at, s.timezone, s.overrides, p.interval, "  # noqa: S608
    "p.interval_count, p.billing_anchor, p.limits, "
    # Whether some of the customer's events are not folded into the counters yet (by index).
    f"(SELECT EXISTS (SELECT 1 FROM events pe WHERE pe.customer = :c AND {pending('pe')})) FROM customers c "
    "LEFT JOIN subscriptions s ON s.customer_id = c.id AND s.start <= :now AND (s.ends_at IS NULL OR s.ends_at > :now) "
    "LEFT JOIN plans p ON p.code = s.plan_code WHERE c.id = :c ORDER BY s.id"
)


def standing(session: Session, customer_id: str, now: datetime) -> Standing | None:
    """The customer's time zone, billing type, the limits of its subscriptions active at ``now``
    and whether some of its events are pending (None for an unknown customer). One query: a
    check runs this on every call."""
    d = dialect_for(session.get_bind().dialect.name)
    rows = session.execute(text(_ACTIVE), {"c": customer_id, "now": d.ts(now)}).all()
    if not rows:
        return None
    entries: list[Entry] = []
    subscribed = False
    for _, _, sub, start, ends_at, sub_tz, overrides, interval, count, anchor, limits, _ in rows:
        if sub is None:
            continue
        subscribed = True
        # Stored documents were validated when written (plans, subscriptions).
        raised = _doc(overrides).get("limits") or {}
        for limit in _doc(limits) or []:
            window = limit.get("window", "period")
            maximum = Decimal(str(limit["max"]))
            cycle = None
            if window == "period":
                if limit["meter"] in raised:
                    maximum = Decimal(str(raised[limit["meter"]]))
                cycle = Cycle(interval, int(count or 1), anchor, sub_tz, as_utc(start),
                              as_utc(ends_at) if ends_at is not None else None)  # fmt: skip
            entries.append(Entry(sub, limit["meter"], window, maximum, limit.get("action", "block"), cycle))
    tz, billing_type, pending = rows[0][0], rows[0][1], bool(rows[0][11])
    profile = Profile.of(customer_id, tz, entries)
    return Standing(customer_id, tz, profile, subscribed, billing_type == "prepaid", pending)


def credits_exhausted(session: Session, customer_id: str, now: datetime) -> bool:
    """A prepaid customer's ongoing credit balance (its usable credits minus the upcoming
    invoice so far, ``credit.service.ongoing_balance``) is <= 0. Usage past what can be priced
    (``UnbillableUsage``) exceeds any balance: exhausted."""
    try:
        return ongoing_balance(session, customer_id, now) <= 0
    except UnbillableUsage:
        log.warning("limits check: customer %s's usage cannot be priced; credits counted as exhausted", customer_id)
        return True


def _doc(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else (value if value is not None else {})


def current_keys(profile: Profile, now: datetime, meter: str | None = None) -> dict[tuple[Any, ...], CounterKey]:
    """The counter of each limit's window containing ``now``, by counter identity."""
    out: dict[tuple[Any, ...], CounterKey] = {}
    for entry in profile.entries:
        if meter is not None and entry.meter != meter:
            continue
        bounds = entry.bounds(now, profile.tz)
        if bounds is not None:
            out[entry.counter] = CounterKey(profile.customer, entry.meter, entry.window, bounds[0], bounds[1])
    return out


def _meters(session: Session, keys: set[str]) -> dict[str, MeterDefinition]:
    if not keys:
        return {}
    rows = session.scalars(select(Meter).where(Meter.key.in_(sorted(keys))))
    return {m.key: MeterDefinition.from_row(m) for m in rows}


def measure(session: Session, profile: Profile, keys: dict[tuple[Any, ...], CounterKey]) -> dict[CounterKey, Decimal]:
    """Each counter's value computed from the events (the meter's usage query)."""
    meters = _meters(session, {k.meter for k in keys.values()})
    out = {}
    for key in keys.values():
        meter = meters.get(key.meter)
        if meter is None:
            continue
        rows = query_usage(session, meter, start=key.start, end=key.end, customer=profile.customer)
        out[key] = rows[0].value if rows and rows[0].value is not None else Decimal(0)
    return out


def pending_usage(
    session: Session, profile: Profile, keys: dict[tuple[Any, ...], CounterKey], now: datetime
) -> dict[CounterKey, Decimal]:
    """What the customer's pending events (not folded into the counters yet) add to each counter
    of ``keys``: the part of ``used`` the counters do not hold."""
    if not keys:
        return {}
    d = dialect_for(session.get_bind().dialect.name)
    meters = _meters(session, {k.meter for k in keys.values()})
    lo, hi = min(k.start for k in keys.values()), max(k.end for k in keys.values())
    where = [
        "e.voided_at IS NULL",
        f"e.timestamp >= {d.bind(d.ts(lo))}",
        f"e.timestamp < {d.bind(d.ts(hi))}",
    ]
    limited = {m: [profile.customer] for m in meters}
    # By index: only this customer's pending events.
    source = d.pending_events(f"= {d.bind(profile.customer)}")
    sql = tally.rows_sql(d, meters.values(), limited, source, where, aliased=True)
    if sql is None:
        return {}
    rows = [tally.to_row(r) for r in session.execute(text(sql), d.params)]
    wanted = set(keys.values())
    found = tally.increments(rows, {profile.customer: profile}, now=now)
    return {k: v for k, v in found.items() if k in wanted}


def seed(session: Session, backend: CounterBackend, profile: Profile, now: datetime) -> dict[CounterKey, Decimal]:
    """Compute the customer's counters from the events and store them with the profile.

    Holds the ingestion lock exclusively (PostgreSQL; SQLite has one writer), so no batch is
    stored and no fold runs between the computation and the store. The counters get the events
    that are not pending (the worker folds those in later); windows after the current ones get
    the events already stored for them (timestamps in the future). Returns the current windows'
    values over every event, pending or not."""
    rollup.lock_exclusive(session)
    keys = current_keys(profile, now)
    values = measure(session, profile, keys)
    pending = pending_usage(session, profile, keys, now)
    folded = {k: EXACT.subtract(v, pending.get(k, Decimal(0))) for k, v in values.items()}
    if keys:
        d = dialect_for(session.get_bind().dialect.name)
        horizon = min(k.end for k in keys.values())
        meters = _meters(session, profile.meters())
        where = [
            "e.voided_at IS NULL",
            f"e.timestamp >= {d.bind(d.ts(horizon))}",
            not_pending("e"),
        ]
        sql = tally.rows_sql(d, meters.values(), {m: [profile.customer] for m in meters}, "events", where)
        if sql:
            rows = [tally.to_row(r) for r in session.execute(text(sql), d.params)]
            later = tally.increments(rows, {profile.customer: profile}, now=now)
            folded.update({k: v for k, v in later.items() if k not in folded})
    backend.seed(session, profile, folded, now)
    notify(session, profile, values)
    return values


def notify(session: Session | Any, profile: Profile, totals: dict[CounterKey, Decimal]) -> None:
    """Send ``limit.reached`` for each limit whose window's counter is at or past its max, once
    per subscription, limit and window (``limit_notices`` is the memory)."""
    for key, total in totals.items():
        for entry in profile.entries:
            if entry.meter == key.meter and entry.window == key.window and total >= entry.max:
                if entry.bounds(key.start, profile.tz) == (key.start, key.end):
                    reached(session, entry, key, total)


def reached(conn: Session | Any, entry: Entry, key: CounterKey, used: Decimal) -> None:
    d = dialect_for((conn.get_bind() if isinstance(conn, Session) else conn).dialect.name)
    inserted = conn.execute(
        text(
            "INSERT INTO limit_notices (subscription, meter_key, window_kind, action, window_start, created_at) "
            "VALUES (:s, :m, :w, :a, :start, :at) ON CONFLICT DO NOTHING RETURNING subscription"
        ),
        {
            "s": entry.subscription,
            "m": entry.meter,
            "w": entry.window,
            "a": entry.action,
            "start": d.ts(key.start),
            "at": d.ts(utcnow()),
        },
    ).first()
    if inserted is None:
        return
    payload = {
        "customer": key.customer,
        "subscription": entry.subscription,
        "meter": entry.meter,
        "window": entry.window,
        "max": _fmt(entry.max),
        "used": _fmt(used),
        "resets_at": key.end.isoformat(),
        "action": entry.action,
        "window_start": key.start.isoformat(),
    }
    emit_now(conn, "limit.reached", payload, key=f"{entry.subscription}|{entry.meter}|{entry.window}|{entry.action}")


def _fmt(value: Decimal) -> str:
    return format_decimal(value)


def check_meter(session: Session, meter: str | None) -> None:
    if meter is not None and session.get(Meter, meter) is None:
        raise ValidationFailed.field("meter", f"meter '{meter}' does not exist")
