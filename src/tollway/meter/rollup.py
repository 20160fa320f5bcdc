"""Hourly rollups of every meter.

For each meter, per customer, UTC hour and group (the meter's ``group_by`` values), a row holds
the partial aggregate of the events in it: the count, and the exact sum, min, max or latest value
as the meter's aggregation needs. Usage queries read whole hours from here and only the ragged
edges of their windows from the raw events (see ``query.query_usage``).

Next to them, per hour and group, a row under the customer :data:`EVERY_CUSTOMER` (the empty
string, which no customer id can be) merges the rows of every customer: usage over every customer
(the console's meters page) reads one row per hour and group instead of one per customer. They
are kept by the same statements: the fold (``meter.fold.apply_pending``) adds each event to both; a rebuild of some
customers' hours recomputes those hours' rows of every customer from the per-customer rows; a
meter's build (:func:`build_step`) computes them all when its last chunk is done (until then the
meter is read raw). So, for a meter whose rollups are ready, they always equal the merge of the
per-customer rows.

Storing a batch only marks its events pending (``events.tx``, when a meter counts their type:
``meter.sql.pending``); the worker adds pending events to the rollups in bulk
(``meter.fold``), thousands at a time, so concurrent batches never wait on each other's rollup
rows. A usage query reads the rollups and the pending events in one statement (one snapshot), so
every event counts exactly once whether or not it has been rolled up yet. Raw events stay the
source of truth: rollups are rebuilt from them when a meter is created or changed, when an event
is voided, or on demand (``tollway rollups rebuild``).

Concurrency on PostgreSQL: storing a batch and applying pending events take a shared advisory
lock and read the meters inside their transaction; a rebuild takes the same lock exclusively. So
a rebuild never races a batch or an apply, and a batch never misses a meter created meanwhile.
Applying also waits first for the batches in flight below its cut (``meter.fold``).
``unique_count`` meters have no hourly rollup (distinct values do not add up): their pending
events are folded into the distinct values of the customers' billing periods instead
(``meter.distinct``), in the same statement; the worker builds those sets under the exclusive
lock (:func:`distinct_step`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.orm import Session

from tollway.db import is_postgres
from tollway.kit.time import add_clamped
from tollway.meter import distinct
from tollway.meter.aggregations import REGISTRY
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import Dialect, dialect_for, meter_conditions, not_pending, reads_value, value_expr
from tollway.models import Meter

EVERY_CUSTOMER = ""
"""The ``customer`` of the rollup rows of every customer together (customer ids are never empty)."""

ROLLUP_LOCK = 7_404_179  # advisory lock id shared by ingestion (shared) and rebuilds (exclusive)

COLUMNS = (
    "meter_key, customer, bucket_start, group_key, event_count, value_sum, value_min, value_max, "
    "latest_at, latest_id, latest_value"
)

TYPED_COLUMNS = (
    "meter_key, customer, bucket_start, group_key, event_count, CAST(value_sum AS numeric) AS value_sum, "
    "CAST(value_min AS numeric) AS value_min, CAST(value_max AS numeric) AS value_max, "
    "CAST(latest_at AS timestamp) AS latest_at, CAST(latest_id AS text) AS latest_id, "
    "CAST(latest_value AS numeric) AS latest_value"
)
"""PostgreSQL: the columns of rollup rows in a CTE, typed as in ``meter_rollups`` (a ``NULL`` an
aggregation leaves unused would be ``text``)."""


def has_rollup(meter: MeterDefinition) -> bool:
    """Whether the meter has hourly rollup rows."""
    return REGISTRY[meter.aggregation].rolls_up


FOLDED_AGGREGATIONS = frozenset(name for name, agg in REGISTRY.items() if agg.rolls_up or agg.keeps_period_sets)
"""The aggregations whose meters the worker folds (hourly rollups, or period sets): a stored
event is pending (gets ``events.tx``) when a meter with one of them counts its type (the event
store's insert filters the meters by this list in SQL)."""


def is_folded(meter: MeterDefinition) -> bool:
    """Whether the worker folds the meter's events (:data:`FOLDED_AGGREGATIONS`)."""
    return meter.aggregation in FOLDED_AGGREGATIONS


def _newer(old: str, new: str) -> str:
    return (
        f"({new}.latest_at IS NOT NULL AND ({old}.latest_at IS NULL OR {new}.latest_at > {old}.latest_at "
        f"OR ({new}.latest_at = {old}.latest_at AND {new}.latest_id > {old}.latest_id)))"
    )


def upsert_sql(
    d: Dialect, meter: MeterDefinition, source: str, extra_where: Sequence[str] = (), *, every_customer: bool = False
) -> str:
    """``INSERT … SELECT … ON CONFLICT DO UPDATE`` adding the events of ``source`` (a table, or a
    CTE holding just-inserted rows, aliased ``e``) to the meter's rollups: the rows per customer,
    or (``every_customer``) the rows of every customer together."""
    value = value_expr(d, meter)
    type_, *filters = meter_conditions(d, meter)
    where = [type_, "e.voided_at IS NULL", *extra_where, *filters]
    if reads_value(meter):
        where.append(f"{value} IS NOT NULL")
    customer = d.bind(EVERY_CUSTOMER) if every_customer else "e.customer"
    select = rows_select_sql(
        d,
        meter,
        source,
        hour=d.hour_of("e.timestamp"),
        group_values=[d.text_value(p) for p in meter.group_by],
        value=value,
        cond=" AND ".join(where),
        customer=customer,
    )
    return merge_rows_sql(d, select)


def rows_select_sql(
    d: Dialect,
    meter: MeterDefinition,
    source: str,
    *,
    hour: str,
    group_values: Sequence[str],
    value: str,
    cond: str,
    customer: str,
    ordered: bool = True,
) -> str:
    """The meter's rollup rows (the ``meter_rollups`` columns, in order) of the events of
    ``source`` (aliased ``e``) that meet ``cond``, per customer (unless ``customer`` is a
    constant: the rows of every customer), hour and group (``group_values``: the text of each
    ``group_by`` property; the row's ``group_key`` is their JSON array, built once per row, not
    per event), in that order (unless not ``ordered``)."""
    groups = [*([] if customer != "e.customer" else ["e.customer"]), hour, *group_values]
    return REGISTRY[meter.aggregation].rollup_select(
        d,
        key=d.bind(meter.key),
        hour=hour,
        group_key=d.json_array(list(group_values)),
        groups=", ".join(groups),
        value=value,
        source=source,
        cond=cond,
        customer=customer,
        ordered=ordered,
    )


def merge_rows_sql(d: Dialect, select: str) -> str:
    """``INSERT INTO meter_rollups`` the rows of ``select`` (the ``meter_rollups`` columns, in
    order), merging each into the stored row of its meter, customer, hour and group if there is
    one: counts and sums add up, the min of mins, the max of maxes, the latest by
    ``(latest_at, latest_id)``."""
    if d.name == "postgresql":
        add = "CASE WHEN r.value_sum IS NULL THEN x.value_sum WHEN x.value_sum IS NULL THEN r.value_sum ELSE r.value_sum + x.value_sum END"  # noqa: E501
    else:
        add = "tw_decimal_add(r.value_sum, x.value_sum)"
    newer = _newer("r", "x")
    updates = (
        "event_count = r.event_count + x.event_count, "
        f"value_sum = {add}, "
        f"value_min = {d.least('r.value_min', 'x.value_min')}, "
        f"value_max = {d.greatest('r.value_max', 'x.value_max')}, "
        f"latest_at = CASE WHEN {newer} THEN x.latest_at ELSE r.latest_at END, "
        f"latest_id = CASE WHEN {newer} THEN x.latest_id ELSE r.latest_id END, "
        f"latest_value = CASE WHEN {newer} THEN x.latest_value ELSE r.latest_value END"
    )
    # "r" is the stored row and "x" the new partial: rename the table and EXCLUDED for readability.
    updates = updates.replace("r.", "meter_rollups.").replace("x.", "excluded.")
    return (
        f"INSERT INTO meter_rollups ({COLUMNS}) {select} "
        f"ON CONFLICT (meter_key, customer, bucket_start, group_key) DO UPDATE SET {updates}"
    )


def load_meters(conn: Connection | Session, event_types: Iterable[str] | None = None) -> list[MeterDefinition]:
    rows = conn.execute(
        text(
            "SELECT key, event_type, aggregation, value_property, filters, group_by, rollup_status "
            "FROM meters ORDER BY key"
        )
    ).all()
    wanted = set(event_types) if event_types is not None else None
    out = []
    for r in rows:
        if wanted is not None and r.event_type not in wanted:
            continue
        filters = r.filters if isinstance(r.filters, list) else _json(r.filters)
        group_by = r.group_by if isinstance(r.group_by, list) else _json(r.group_by)
        meter = MeterDefinition(
            r.key,
            r.event_type,
            r.aggregation,
            r.value_property,
            tuple(filters),
            tuple(group_by),
            rollups_ready=r.rollup_status == "ready",
        )
        if is_folded(meter):
            out.append(meter)
    return out


def _json(value: Any) -> Any:
    # The column as SQLAlchemy's JSON type wrote it (json.dumps): read it back the same way, so
    # that a filter value past 64 bits stays the exact integer it was (orjson would make it a
    # float, or fail past a double).
    return json.loads(value) if value else []


LOCK_SHARED_SQL = "SELECT pg_advisory_xact_lock_shared(%(k)s)"
"""The shared lock as a driver-level statement (``event.store`` pipelines it with its insert)."""


def lock_shared(conn: Connection | Session) -> None:
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": ROLLUP_LOCK})


def lock_exclusive(conn: Connection | Session) -> None:
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROLLUP_LOCK})


def _hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    lo = start.replace(minute=0, second=0, microsecond=0)
    last = end - timedelta(microseconds=1)
    return lo, add_clamped(last.replace(minute=0, second=0, microsecond=0), timedelta(hours=1))


def rebuild(
    session: Session,
    meter: MeterDefinition,
    *,
    customer: str | None = None,
    customers: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    every_customer: bool = True,
) -> None:
    """Recompute the meter's rollups from the raw events: all of them, one ``customer``'s or a
    list of ``customers``', optionally only the hours in ``[start, end)`` (widened to whole
    hours), then the rows of every customer of those hours (unless not ``every_customer``: a
    build computes them once, when done). Runs in the caller's transaction, under the exclusive
    lock."""
    lock_exclusive(session)
    name = session.get_bind().dialect.name
    span = _hours(start, end) if start is not None and end is not None else None
    who = [customer] if customer is not None else (list(customers) if customers is not None else None)

    d = dialect_for(name)
    where = [f"meter_key = {d.bind(meter.key)}"]
    if who is not None:
        where.append(f"customer {d.in_list(who, 'text')}")
    elif not every_customer:
        where.append(f"customer <> {d.bind(EVERY_CUSTOMER)}")
    if span is not None:
        where.append(f"bucket_start >= {d.bind(d.ts(span[0]))} AND bucket_start < {d.bind(d.ts(span[1]))}")
    session.execute(text(f"DELETE FROM meter_rollups WHERE {' AND '.join(where)}"), d.params)
    if not has_rollup(meter):
        return
    d = dialect_for(name)
    # Pending events reach the rollups through apply_pending; counting them here would count twice.
    extra = [not_pending("e")]
    if who is not None:
        extra.append(f"e.customer {d.in_list(who, 'text')}")
    if span is not None:
        extra.append(f"e.timestamp >= {d.bind(d.ts(span[0]))} AND e.timestamp < {d.bind(d.ts(span[1]))}")
    session.execute(text(upsert_sql(d, meter, "events", extra)), d.params)
    if every_customer:
        rebuild_every_customer(session, meter, start=span[0] if span else None, end=span[1] if span else None)


def as_partials(rows: str) -> str:
    """Rollup rows (``rows``: a table or CTE with the ``meter_rollups`` columns, and its
    conditions) as the partials ``u`` that ``Aggregation.merge_rollups_select`` merges."""
    return (
        "(SELECT bucket_start, group_key, event_count AS n, value_sum AS vs, value_min AS vmin, value_max AS vmax, "
        f"latest_at AS la, latest_id AS li, latest_value AS lv FROM {rows}) u"
    )


def rebuild_every_customer(
    conn: Connection | Session, meter: MeterDefinition, *, start: datetime | None = None, end: datetime | None = None
) -> None:
    """Recompute the meter's rows of every customer (all hours, or those in ``[start, end)``,
    whole hours) from its per-customer rows, which must be complete (not mid-build). In the
    caller's transaction, under the exclusive lock."""
    d = dialect_for(conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name)
    where = f"meter_key = {d.bind(meter.key)}"
    if start is not None and end is not None:
        where += f" AND bucket_start >= {d.bind(d.ts(start))} AND bucket_start < {d.bind(d.ts(end))}"
    conn.execute(text(f"DELETE FROM meter_rollups WHERE {where} AND customer = {d.bind(EVERY_CUSTOMER)}"), d.params)
    if not has_rollup(meter):
        return
    source = as_partials(f"meter_rollups WHERE {where} AND customer <> {d.bind(EVERY_CUSTOMER)}")
    select = REGISTRY[meter.aggregation].merge_rollups_select(
        d, key=d.bind(meter.key), customer=d.bind(EVERY_CUSTOMER), source=source
    )
    conn.execute(text(f"INSERT INTO meter_rollups ({COLUMNS}) {select}"), d.params)


# ------------------------------------------------------------------ building off the request path

BUILD_CHUNK = 100
"""Customers per build transaction: ingestion waits for one chunk at most (the exclusive lock)."""


def start_build(session: Session, row: Meter, *, force: bool = False) -> None:
    """Have the worker (re)build ``row``'s rollups after it was created or changed; usage reads
    the raw events until the build is done. On an empty events table there is nothing to build
    (unless ``force``)."""
    building = has_rollup(MeterDefinition.from_row(row)) and (
        force or bool(session.execute(text("SELECT EXISTS (SELECT 1 FROM events)")).scalar_one())
    )
    # Its period sets too: the worker builds them again.
    distinct.forget(session, row.key, lock=lambda: lock_exclusive(session))
    row.rollup_status = "building" if building else "ready"
    row.rollup_cursor = None
    row.rollup_customers_built = 0
    row.rollup_customers_total = None
    session.flush()


def build_step(session: Session, key: str, *, chunk: int = BUILD_CHUNK) -> bool:
    """Build the rollups of the next ``chunk`` customers of a meter being built, in the caller's
    transaction; True when the meter is ready (or gone).

    Correct whatever ingestion does meanwhile: every event stored after the meter was created
    or changed is pending (``meter.sql.pending``) and added by :func:`apply_pending`; a chunk
    deletes its customers' rows and recomputes them from the events that are not pending, under
    the exclusive lock. Customers already built stay exact through ``apply_pending``; customers
    not built yet are not read from the rollups until the meter is ready."""
    row = session.get(Meter, key, with_for_update=True)
    if row is None or row.rollup_status != "building":
        return True
    meter = MeterDefinition.from_row(row)
    if row.rollup_cursor is None and row.rollup_customers_total is None:
        d = dialect_for(session.get_bind().dialect.name)
        # First step: no stale row survives a change of definition (customers that no longer
        # have events of the type), and the total is known for the progress shown.
        session.execute(text(f"DELETE FROM meter_rollups WHERE meter_key = {d.bind(meter.key)}"), d.params)
        row.rollup_customers_total = len(_customers_after(session, None, None))
    customers = _customers_after(session, row.rollup_cursor, chunk)
    if customers:
        rebuild(session, meter, customers=customers, every_customer=False)
        row.rollup_cursor = customers[-1]
        row.rollup_customers_built += len(customers)
    if len(customers) < chunk:
        # Every customer is built: the rows of every customer from theirs (those that pending
        # events were added to meanwhile are recomputed too, so nothing counts twice).
        lock_exclusive(session)
        rebuild_every_customer(session, meter)
        row.rollup_status = "ready"
        row.rollup_cursor = None
        row.rollup_customers_total = max(row.rollup_customers_total or 0, row.rollup_customers_built)
    session.flush()
    return row.rollup_status == "ready"


def _customers_after(session: Session, after: str | None, limit: int | None) -> list[str]:
    """The customers that have events, in order, after ``after``: a loose index scan (one probe
    of the events' ``(customer, type, timestamp)`` index per customer, never a scan of the
    events). Customers without events of the meter's type cost a chunk nothing to rebuild."""
    d = dialect_for(session.get_bind().dialect.name)
    first = "" if after is None else f"WHERE customer > {d.bind(after)}"
    stop = "" if limit is None else f"AND c.n < {int(limit)}"
    sql = (
        "WITH RECURSIVE c(customer, n) AS ("
        f"SELECT (SELECT min(customer) FROM events {first}), 1 "
        "UNION ALL SELECT (SELECT min(e.customer) FROM events e WHERE e.customer > c.customer), c.n + 1 "
        f"FROM c WHERE c.customer IS NOT NULL {stop}"
        ") SELECT customer FROM c WHERE customer IS NOT NULL ORDER BY n"
    )
    return [r[0] for r in session.execute(text(sql), d.params)]


def building(session: Session) -> list[str]:
    """The keys of the meters whose rollups are being built."""
    return list(session.scalars(select(Meter.key).where(Meter.rollup_status == "building").order_by(Meter.key)))


DISTINCT_BUDGET = 20
"""Period sets built per transaction (each a scan of one customer's period, under the exclusive lock)."""


def distinct_step(session: Session, now: datetime, *, budget: int = DISTINCT_BUDGET) -> int:
    """Build the period sets the subscriptions want and drop those they no longer do
    (``meter.distinct.ensure_periods``), at most ``budget`` new sets, in the caller's transaction
    under the exclusive lock (taken only when there is something to do); returns the sets built
    (``budget`` when more may be left)."""
    built, _ = distinct.ensure_periods(
        session, load_meters(session), now, lock=lambda: lock_exclusive(session), budget=budget
    )
    return built


def rebuild_all(session: Session) -> int:
    """Rebuild every meter's rollups in the caller's transaction, at once (benchmarks, after a bulk
    load with nothing else running); marks them ready. ``tollway rollups rebuild`` builds chunk by
    chunk instead (:func:`build_step`), so ingestion keeps going."""
    meters = load_meters(session)
    for meter in meters:
        rebuild(session, meter)
    session.execute(
        update(Meter)
        .where(Meter.rollup_status != "ready")
        .values(rollup_status="ready", rollup_cursor=None, rollup_customers_total=None, rollup_customers_built=0)
    )
    return len(meters)
