"""Distinct values of ``unique_count`` meters per customer billing period, kept by the worker.

Distinct values do not add up across hours, and per-hour value sets grow as large as the events
when values recur across hours; the windows billing reads are the customers' billing periods
(the upcoming invoice, the portal, period limits and alerts). So, for each ``unique_count``
meter and each billing period a subscription has now (the current one, the next one, and those
that ended less than :data:`KEEP_ENDED` ago), a set holds the SHA-256 digest of each distinct
value with the number of live events that carry it:

- :func:`ensure_periods` (the worker) registers the periods the subscriptions want and fills each
  from the stored events that are not pending, in the same transaction under the rollups'
  exclusive lock (a ``distinct_periods`` row exists only once complete), and drops the sets no
  subscription wants any more (a plan change, a cancellation, a period long over);
- :func:`fold_ctes` / :func:`fold_statements` (``fold.apply_pending``) add the pending events
  to the sets of the periods they fall in, in the transaction that moves the watermark past
  them (``meter.sql.pending``);
- :func:`take_off` (voiding an event that was folded) takes one off its value's count and drops
  the value when no live event in the period carries it any more;
- :func:`forget` (a meter created or changed) drops the meter's sets: they are built again.

So, for a registered period, a value's count is the number of live, folded (not pending) events
of the customer in the period that carry it. :func:`period_values` answers a window that equals
a registered period: the size of its set plus the distinct values of the pending events that are
not in it, in one statement (one snapshot), exactly what the raw events give. The size is kept
on the period row (``value_count``: a value new to the set adds one, a value leaving it takes
one off), so reading it costs the same however many distinct values the period has. Any other window
(a day, a range, ``as_of``, a group, a customer without subscription) is read from the raw events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, or_, select, text
from sqlalchemy.orm import Session

from tollway.meter.aggregations import REGISTRY
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import Dialect, dialect_of, meter_conditions, not_pending, pending, value_expr
from tollway.models import Event, Plan, Subscription
from tollway.subscription.terms import Terms

KEEP_ENDED = timedelta(days=2)
"""How long the set of a period that ended is kept (its upcoming invoice until it is billed)."""


def keeps_sets(meter: MeterDefinition) -> bool:
    return REGISTRY[meter.aggregation].keeps_period_sets


def digest(d: Dialect, value: str) -> str:
    """The SHA-256 digest of a text value: what the sets key values by (any length fits)."""
    return f"sha256(convert_to({value}, 'UTF8'))" if d.name == "postgresql" else f"tw_sha256({value})"


def _counted(d: Dialect, meter: MeterDefinition) -> list[str]:
    """The conditions for an event ``e`` to count in the meter's sets (its time and customer aside)."""
    return [*meter_conditions(d, meter), f"{value_expr(d, meter)} IS NOT NULL"]


def _folded_values(
    d: Dialect, meter: MeterDefinition, source: str, *, value: str | None = None, cond: str | None = None
) -> str:
    """``SELECT period_id, digest, events`` of the live events of ``source`` (aliased ``e``) per
    registered period of the meter they fall in and value. ``value`` and ``cond`` (the event's
    value, and whether it counts: live, :func:`_counted`) are read from the ``source`` rows
    when given (``fold.fold_ctes`` projects them once for every meter), else computed from the
    event's properties."""
    value = value_expr(d, meter) if value is None else value
    cond = " AND ".join(["e.voided_at IS NULL", *_counted(d, meter)]) if cond is None else cond
    return (
        f"SELECT dp.id AS period_id, {digest(d, value)} AS digest, COUNT(*) AS events "
        f"FROM {source} e "
        f"JOIN distinct_periods dp ON dp.meter_key = {d.bind(meter.key)} AND dp.customer = e.customer "
        f"AND e.timestamp >= dp.period_start AND e.timestamp < dp.period_end "
        f"WHERE {cond} GROUP BY 1, 2 ORDER BY 1, 2"
    )


_ADD = "ON CONFLICT (period_id, digest) DO UPDATE SET events = distinct_values.events + excluded.events"


def fold_ctes(d: Dialect, meter: MeterDefinition, source: str, name: str, *, value: str, cond: str) -> list[str]:
    """PostgreSQL: the CTEs (``name AS (…)``, in order) adding the live events of ``source`` to
    the meter's sets of the periods they fall in, and the values new to a set to its
    ``value_count``; ``source``'s rows (``e``) hold the ``customer``, ``timestamp``, and the
    columns ``value`` and ``cond`` read (see :func:`_folded_values`). A row the insert created
    has ``xmax = 0``; one it updated (the value was there, or another worker inserted it
    meanwhile) has not, so concurrent folds count a new value once."""
    insert = (
        f"INSERT INTO distinct_values (period_id, digest, events) "
        f"{_folded_values(d, meter, source, value=value, cond=cond)} {_ADD} "
        "RETURNING period_id, (xmax = 0) AS fresh"
    )
    count = (
        "UPDATE distinct_periods dp SET value_count = dp.value_count + x.n FROM "
        f"(SELECT period_id, COUNT(*) AS n FROM {name}_v WHERE fresh GROUP BY 1) x WHERE dp.id = x.period_id"
    )
    return [f"{name}_v AS ({insert})", f"{name}_n AS ({count})"]


def fold_statements(d: Dialect, meter: MeterDefinition, source: str) -> list[str]:
    """SQLite (one writer at a time): the statements, in order, adding the values of ``source``
    that are new to a set to its ``value_count``, then its live events to the sets."""
    new = (
        f"SELECT COUNT(*) FROM ({_folded_values(d, meter, source)}) f "
        "WHERE f.period_id = distinct_periods.id "
        "AND NOT EXISTS (SELECT 1 FROM distinct_values x WHERE x.period_id = f.period_id AND x.digest = f.digest)"
    )
    count = (
        f"UPDATE distinct_periods SET value_count = value_count + ({new}) "
        f"WHERE meter_key = {d.bind(meter.key)} AND customer IN (SELECT e.customer FROM {source} e)"
    )
    insert = f"INSERT INTO distinct_values (period_id, digest, events) {_folded_values(d, meter, source)} {_ADD}"
    return [count, insert]


def _build(session: Session, meter: MeterDefinition, customer: str, start: datetime, end: datetime) -> None:
    """Register one period and fill its set from the stored events not pending (those reach it
    through the fold). The caller holds the exclusive lock."""
    d = dialect_of(session)
    period_id = session.execute(
        text(
            "INSERT INTO distinct_periods (meter_key, customer, period_start, period_end) "
            f"VALUES ({d.bind(meter.key)}, {d.bind(customer)}, {d.bind(d.ts(start))}, {d.bind(d.ts(end))}) "
            "RETURNING id"
        ),
        d.params,
    ).scalar_one()
    d = dialect_of(session)
    where = [
        f"e.customer = {d.bind(customer)}",
        *_counted(d, meter),
        f"e.timestamp >= {d.bind(d.ts(start))}",
        f"e.timestamp < {d.bind(d.ts(end))}",
        "e.voided_at IS NULL",
        not_pending("e"),
    ]
    session.execute(
        text(
            f"INSERT INTO distinct_values (period_id, digest, events) "
            f"SELECT {d.bind(period_id)}, {digest(d, value_expr(d, meter))}, COUNT(*) FROM events e "
            f"WHERE {' AND '.join(where)} GROUP BY 2"
        ),
        d.params,
    )
    session.execute(
        text(
            "UPDATE distinct_periods SET value_count = "
            "(SELECT COUNT(*) FROM distinct_values WHERE period_id = :p) WHERE id = :p"
        ),
        {"p": period_id},
    )


def wanted_periods(session: Session, now: datetime) -> set[tuple[str, datetime, datetime]]:
    """``(customer, start, end)`` of the billing periods (clipped to the subscription's end, as
    invoices read them) that live reads ask for: each subscription's period now, the next one (so
    that it is ready before its first event), and those that ended less than
    :data:`KEEP_ENDED` ago."""
    since = now - KEEP_ENDED
    rows = session.execute(
        select(Subscription, Plan)
        .join(Plan, Plan.code == Subscription.plan_code)
        .where(or_(Subscription.ends_at.is_(None), Subscription.ends_at > since))
    ).all()
    out: set[tuple[str, datetime, datetime]] = set()
    for sub, plan in rows:
        terms = Terms.of(sub, plan)
        k = 0 if since <= terms.start else terms.cycle.index_at(terms.start, since)
        while (found := terms.period(k)) is not None:
            period = found[0]
            if period.start < period.end:
                out.add((sub.customer_id, period.start, period.end))
            if period.start > now:
                break
            k += 1
    return out


def ensure_periods(
    session: Session,
    meters: Sequence[MeterDefinition],
    now: datetime,
    *,
    lock: Callable[[], None],
    budget: int | None = None,
) -> tuple[int, int]:
    """Register and fill the sets of the periods the subscriptions want, for each meter that keeps
    sets, and drop the others; at most ``budget`` new sets (the rest at the next call). In the
    caller's transaction; ``lock`` takes the rollups' exclusive lock, when there is something to
    do (the sets are then compared again under it). Returns the sets built and dropped."""
    kept = [m for m in meters if keeps_sets(m)]
    wanted = wanted_periods(session, now) if kept else set()
    keys = {m.key for m in kept}

    def compare() -> tuple[list[int], list[tuple[MeterDefinition, str, datetime, datetime]]]:
        have: dict[tuple[str, str, datetime, datetime], int] = {}
        sql = "SELECT id, meter_key, customer, period_start, period_end FROM distinct_periods"
        for r in session.execute(text(sql)):
            have[(r.meter_key, r.customer, _aware(r.period_start), _aware(r.period_end))] = int(r.id)
        stale = [pid for (key, c, a, b), pid in have.items() if key not in keys or (c, a, b) not in wanted]
        missing = [(m, *w) for m in kept for w in sorted(wanted) if (m.key, *w) not in have]
        return stale, missing

    stale, missing = compare()
    if not stale and not missing:
        return 0, 0
    lock()
    stale, missing = compare()
    _drop(session, stale)
    missing = missing if budget is None else missing[:budget]
    for meter, customer, start, end in missing:
        _build(session, meter, customer, start, end)
    return len(missing), len(stale)


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands raw text back from a text() query
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _drop(conn: Session | Connection, ids: Sequence[int]) -> None:
    if not ids:
        return
    d = dialect_of(conn)
    conn.execute(text(f"DELETE FROM distinct_values WHERE period_id {d.in_list(list(ids), 'integer')}"), d.params)
    d = dialect_of(conn)
    conn.execute(text(f"DELETE FROM distinct_periods WHERE id {d.in_list(list(ids), 'integer')}"), d.params)


def forget(session: Session, meter_key: str, *, lock: Callable[[], None]) -> None:
    """Drop a meter's sets (it was created or changed): the worker builds them again. ``lock``
    takes the rollups' exclusive lock first, so that a fold or a build that read the old
    definition commits before, and its sets are dropped too."""
    lock()
    d = dialect_of(session)
    sql = f"SELECT id FROM distinct_periods WHERE meter_key = {d.bind(meter_key)}"
    _drop(session, [int(r[0]) for r in session.execute(text(sql), d.params)])


def take_off(session: Session, event: Event, meters: Sequence[MeterDefinition]) -> None:
    """A newly voided event leaves the sets it was folded into: one less event carries its value
    in each period it falls in, and a value no live event carries leaves the set. An event still
    pending was never folded (the worker skips voided events). The caller holds the exclusive lock,
    so no fold or build runs meanwhile."""
    kept = [m for m in meters if keeps_sets(m) and m.event_type == event.type]
    if not kept:
        return
    d = dialect_of(session)
    pending_row = session.execute(
        text(f"SELECT 1 FROM events e WHERE e.id = {d.bind(event.id)} AND {pending('e')}"), d.params
    ).first()
    if pending_row is not None:
        return
    for meter in kept:
        d = dialect_of(session)
        where = [f"e.id = {d.bind(event.id)}", *_counted(d, meter)]
        hit = (
            f"SELECT dp.id, {digest(d, value_expr(d, meter))} FROM events e "
            f"JOIN distinct_periods dp ON dp.meter_key = {d.bind(meter.key)} AND dp.customer = e.customer "
            f"AND e.timestamp >= dp.period_start AND e.timestamp < dp.period_end WHERE {' AND '.join(where)}"
        )
        rows = session.execute(text(hit), d.params).all()
        for period_id, value in rows:
            params = {"p": period_id, "v": value}
            session.execute(
                text("UPDATE distinct_values SET events = events - 1 WHERE period_id = :p AND digest = :v"), params
            )
            gone = session.execute(
                text("DELETE FROM distinct_values WHERE period_id = :p AND digest = :v AND events <= 0 RETURNING 1"),
                params,
            ).first()
            if gone is not None:
                session.execute(text("UPDATE distinct_periods SET value_count = value_count - 1 WHERE id = :p"), params)


def period_values(
    session: Session, meter: MeterDefinition, spans: Sequence[tuple[str, datetime, datetime]]
) -> dict[int, Decimal]:
    """The meter's value over each span ``(customer, start, end)`` that equals one of the
    customer's registered periods (by 0-based index into ``spans``): the size of the period's set
    plus the distinct values of the pending events in it that the set lacks, in one statement.
    Spans that match no registered period are left out (the caller reads them raw)."""
    if not spans or not keeps_sets(meter):
        return {}
    d = dialect_of(session)
    value = value_expr(d, meter)
    # PostgreSQL: OFFSET 0 keeps the probe a subplan, one index probe per pending event; as an
    # anti-join it would hash the whole set (430 ms for 632,249 values, 10,000 pending events).
    fence = " OFFSET 0" if d.name == "postgresql" else ""
    pending_where = [
        "e.customer = dp.customer",
        "e.timestamp >= dp.period_start",
        "e.timestamp < dp.period_end",
        "e.voided_at IS NULL",
        *_counted(d, meter),
        "NOT EXISTS (SELECT 1 FROM distinct_values x "
        f"WHERE x.period_id = dp.id AND x.digest = {digest(d, value)}{fence})",
    ]
    # Only the period's customer's pending events, by index.
    source = d.pending_events("= dp.customer")
    new_values = f"SELECT COUNT(DISTINCT {value}) FROM {source} WHERE {' AND '.join(pending_where)}"
    join = d.spans_join(spans, column="dp.period_start", customer="dp.customer")
    sql = (
        f"SELECT bk.idx, dp.value_count, ({new_values}) "
        f"FROM distinct_periods dp {join} WHERE dp.meter_key = {d.bind(meter.key)} "
        f"AND dp.period_start = bk.lo AND dp.period_end = bk.hi"
    )
    return {int(idx) - 1: Decimal(int(kept) + int(new)) for idx, kept, new in session.execute(text(sql), d.params)}
