"""Meter values computed in the database: one SQL statement per query, over the event store.

Windows are computed in Python (``kit.time.windows``, DST-correct in any IANA zone) and sent to
the database as a list of ``[lo, hi)`` bounds that the events join against; the index on
``(customer, type, timestamp)`` serves each bound as a range scan. Property access, filters and
aggregates are rendered per dialect (PostgreSQL ``jsonb`` operators, SQLite JSON1 functions).
Property paths are validated when the meter is created (``schemas.check_path``) and are the only
text rendered into SQL; every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from tollway.kit.time import add_clamped
from tollway.kit.time import windows as make_windows
from tollway.meter import distinct
from tollway.meter.aggregations import REGISTRY, Aggregation, Partial
from tollway.meter.definition import MeterDefinition
from tollway.meter.rollup import EVERY_CUSTOMER
from tollway.meter.sql import Dialect, base_conditions, dialect_of, value_expr

__all__ = ["UsageValue", "query_usage", "usage_totals"]


@dataclass(frozen=True)
class UsageValue:
    start: datetime
    end: datetime
    value: Decimal | None
    groups: dict[str, str | None] = field(default_factory=dict)


def _raw_partials(
    session: Session,
    meter: MeterDefinition,
    bounds: Sequence[tuple[datetime, datetime]],
    *,
    customer: str | None,
    group_by: Sequence[str],
    as_of: datetime | None,
) -> list[tuple[int, tuple[str | None, ...], Partial]]:
    """Aggregate raw events per bound (1-based index into ``bounds``) and group."""
    agg = REGISTRY[meter.aggregation]
    d = dialect_of(session)
    where = base_conditions(d, meter, start=bounds[0][0], end=bounds[-1][1], customer=customer, as_of=as_of)
    source = f"events e {d.buckets_join(bounds)} WHERE {' AND '.join(where)}"
    sql = agg.raw_select(d, value=value_expr(d, meter), groups=[d.text_value(p) for p in group_by], source=source)
    return _read_partials(session, sql, d, agg, len(group_by))


def _read_partials(
    session: Session, sql: str, d: Dialect, agg: Aggregation, n_groups: int
) -> list[tuple[int, tuple[str | None, ...], Partial]]:
    out = []
    for r in session.execute(text(sql), d.params).all():
        groups = tuple(None if g is None else str(g) for g in r[1 : 1 + n_groups])
        out.append((int(r[0]), groups, agg.partial(r)))
    return out


_ROLLED_COLUMNS = (
    "r.event_count AS n, r.value_sum AS vs, r.value_min AS vmin, r.value_max AS vmax, "
    "r.latest_at AS la, r.latest_id AS li, r.latest_value AS lv"
)


def _event_columns(d: Dialect, meter: MeterDefinition) -> str:
    """One event as a rollup row (the columns of :data:`_ROLLED_COLUMNS`)."""
    v = value_expr(d, meter)
    return f"1 AS n, {v} AS vs, {v} AS vmin, {v} AS vmax, e.timestamp AS la, e.id AS li, {v} AS lv"


def _combined_sql(d: Dialect, meter: MeterDefinition, branches: Sequence[str], n_groups: int) -> str:
    """The partials per ``idx`` (and group ``g0…``) over ``branches`` (rollup rows and events,
    each as ``idx, g0…`` and the columns of :data:`_ROLLED_COLUMNS`) read together."""
    agg = REGISTRY[meter.aggregation]
    gcols = "".join(f", u.g{i}" for i in range(n_groups))
    positions = ", ".join(str(i + 1) for i in range(1 + n_groups))
    union = " UNION ALL ".join(branches)
    return f"SELECT u.idx{gcols}, {agg.from_rollups(d)} FROM ({union}) u GROUP BY {positions}"


def _rollup_partials(
    session: Session,
    meter: MeterDefinition,
    bounds: Sequence[tuple[datetime, datetime]],
    *,
    customer: str | None,
    group_by: Sequence[str],
) -> list[tuple[int, tuple[str | None, ...], Partial]]:
    """Aggregate per bound (each bound is whole UTC hours) and group: the meter's hourly rollups
    (the customer's, or with no customer the rows of every customer together) plus the events
    not rolled up yet (``meter.sql.pending``), in one statement so both are read in one snapshot
    and an event the worker rolls up meanwhile is counted exactly once."""
    d = dialect_of(session)
    start, end = bounds[0][0], bounds[-1][1]
    roll_where = [
        f"r.meter_key = {d.bind(meter.key)}",
        f"r.bucket_start >= {d.bind(d.ts(start))}",
        f"r.bucket_start < {d.bind(d.ts(end))}",
    ]
    # One customer's rows, or the rows of every customer together (rollup.EVERY_CUSTOMER).
    roll_where.append(f"r.customer = {d.bind(EVERY_CUSTOMER if customer is None else customer)}")
    roll_groups = "".join(
        f", {d.json_item('r.group_key', meter.group_by.index(p))} AS g{i}" for i, p in enumerate(group_by)
    )
    rolled = (
        f"SELECT bk.idx AS idx{roll_groups}, {_ROLLED_COLUMNS} "
        f"FROM meter_rollups r {d.buckets_join(bounds, column='r.bucket_start')} WHERE {' AND '.join(roll_where)}"
    )
    raw_groups = "".join(f", {d.text_value(p)} AS g{i}" for i, p in enumerate(group_by))
    raw_where = base_conditions(d, meter, start=start, end=end, customer=customer, as_of=None)
    # With a customer, only its pending events, by index, however long the backlog.
    of_customer = None if customer is None else f"= {d.bind(customer)}"
    pending = (
        f"SELECT bk.idx AS idx{raw_groups}, {_event_columns(d, meter)} "
        f"FROM {d.pending_events(of_customer)} {d.buckets_join(bounds)} "
        f"WHERE {' AND '.join(raw_where)}"
    )
    sql = _combined_sql(d, meter, [rolled, pending], len(group_by))
    return _read_partials(session, sql, d, REGISTRY[meter.aggregation], len(group_by))


def _ceil_hour(t: datetime) -> datetime:
    floor = t.replace(minute=0, second=0, microsecond=0)
    return floor if floor == t else add_clamped(floor, timedelta(hours=1))


def _floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _split_hours(a: datetime, b: datetime) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """``[a, b)`` as its whole UTC hours (read from the rollups; None when it holds none) and
    the ragged parts before and after them (read from the raw events)."""
    ha, hb = _ceil_hour(a), _floor_hour(b)
    if ha >= hb:
        return None, [(a, b)]
    return (ha, hb), [(lo, hi) for lo, hi in ((a, ha), (hb, b)) if lo < hi]


def query_usage(
    session: Session,
    meter: MeterDefinition,
    *,
    start: datetime,
    end: datetime,
    customer: str | None = None,
    window: str | None = None,
    tz: ZoneInfo | None = None,
    group_by: Sequence[str] = (),
    as_of: datetime | None = None,
    use_rollups: bool = True,
) -> list[UsageValue]:
    """The meter's value per window ``[start, end)`` (and per group), for one customer or all.

    Whole UTC hours are read from the meter's rollups (plus the events not rolled up yet); the
    parts of windows that do not cover a whole hour, and every query the rollups cannot answer
    (``as_of``, ``unique_count``, a group the meter does not declare, a meter whose rollups are
    being built), are read from the raw events. ``as_of`` counts only events ingested at or
    before that moment, so a past computation (an invoice) can be reproduced. A ``unique_count``
    window equal to one of the customer's billing periods is read from the period's distinct
    values when the worker keeps them (``meter.distinct``).
    """
    bounds = make_windows(start.astimezone(UTC), end.astimezone(UTC), window, tz or ZoneInfo("UTC"))
    if not bounds:
        return []
    agg = REGISTRY[meter.aggregation]
    group_by = tuple(group_by)
    rollups = (
        use_rollups and meter.rollups_ready and as_of is None and agg.rolls_up and set(group_by) <= set(meter.group_by)
    )
    partials: dict[tuple[int, tuple[str | None, ...]], Partial] = {}

    def add(rows: list[tuple[int, tuple[str | None, ...], Partial]], owners: list[int]) -> None:
        for idx, groups, part in rows:
            key = (owners[idx - 1], groups)
            partials[key] = agg.merge(partials[key], part) if key in partials else part

    # Windows equal to a billing period of the customer whose distinct values the worker keeps.
    known = (
        distinct.period_values(session, meter, [(customer, a, b) for a, b in bounds])
        if use_rollups and customer is not None and as_of is None and not group_by
        else {}
    )
    for i, value in known.items():
        partials[(i, ())] = Partial(value)
    if not rollups:
        rest = [i for i in range(len(bounds)) if i not in known]
        if rest:
            add(
                _raw_partials(
                    session, meter, [bounds[i] for i in rest], customer=customer, group_by=group_by, as_of=as_of
                ),
                rest,
            )
    else:
        hour_bounds: list[tuple[datetime, datetime]] = []
        hour_owner: list[int] = []
        raw_bounds: list[tuple[datetime, datetime]] = []
        raw_owner: list[int] = []
        for i, (a, b) in enumerate(bounds):
            hours, edges = _split_hours(a, b)
            if hours is not None:
                hour_bounds.append(hours)
                hour_owner.append(i)
            raw_bounds += edges
            raw_owner += [i] * len(edges)
        if hour_bounds:
            add(_rollup_partials(session, meter, hour_bounds, customer=customer, group_by=group_by), hour_owner)
        if raw_bounds:
            order = sorted(range(len(raw_bounds)), key=lambda k: raw_bounds[k][0])
            raw_sorted = [raw_bounds[k] for k in order]
            add(
                _raw_partials(session, meter, raw_sorted, customer=customer, group_by=group_by, as_of=None),
                [raw_owner[k] for k in order],
            )

    if not group_by:
        values = {idx: p.value for (idx, _), p in partials.items()}
        return [
            UsageValue(a, b, values[i] if values.get(i) is not None else agg.empty) for i, (a, b) in enumerate(bounds)
        ]
    out = []
    for (idx, groups), part in partials.items():
        a, b = bounds[idx]
        out.append(UsageValue(a, b, part.value, dict(zip(group_by, groups, strict=True))))
    out.sort(key=lambda u: (u.start, [(v is None, v or "") for v in u.groups.values()]))
    return out


def usage_totals(
    session: Session,
    meter: MeterDefinition,
    spans: Sequence[tuple[str, datetime, datetime]],
    *,
    as_of: datetime | None = None,
) -> list[Decimal | None]:
    """The meter's value over each span ``(customer, start, end)``, as :func:`query_usage`
    without a window returns it for that customer and range, for any number of customers in ONE
    statement: whole UTC hours from the rollups plus the events not rolled up yet, the ragged
    edges from the raw events (all read in one snapshot, so each event counts exactly once);
    aggregations without rollups from the raw events, except spans equal to a billing period
    whose distinct values the worker keeps (``meter.distinct``). Spans may repeat or overlap.

    With ``as_of`` (an invoice's cutoff), the value as the raw events counted then (ingested by
    ``as_of``, not voided by then), exactly: for an :attr:`~Aggregation.additive` aggregation
    the present value read as above, less the events ingested after ``as_of`` and not voided,
    plus the events voided after ``as_of`` that were ingested by then (both read in the same
    statement by the events' ``ingested_at`` and ``voided_at`` indexes: few events when the
    cutoff is recent). The same statement checks the meter's rollups are still ready (a rebuild
    may have started since its definition was read); if not, and for the other aggregations, the
    spans are read from the raw events as of the cutoff."""
    agg = REGISTRY[meter.aggregation]
    utc_spans = [(c, a.astimezone(UTC), b.astimezone(UTC)) for c, a, b in spans]
    rolled = agg.rolls_up and meter.rollups_ready and (as_of is None or agg.additive)
    partials = {} if as_of is not None else distinct.period_values(session, meter, utc_spans)
    out = _totals(session, meter, utc_spans, {i: Partial(v) for i, v in partials.items()}, rolled=rolled, as_of=as_of)
    if out is None:  # the rollups are being rebuilt: as of the cutoff from the raw events
        out = _totals(session, meter, utc_spans, {}, rolled=False, as_of=as_of)
    assert out is not None
    return out


def _totals(
    session: Session,
    meter: MeterDefinition,
    utc_spans: Sequence[tuple[str, datetime, datetime]],
    partials: dict[int, Partial],
    *,
    rolled: bool,
    as_of: datetime | None,
) -> list[Decimal | None] | None:
    """:func:`usage_totals` over UTC spans, those in ``partials`` known already; None when, read
    as of a cutoff through the rollups (``rolled``), they turned out not to be ready."""
    agg = REGISTRY[meter.aggregation]
    d = dialect_of(session)
    hours: list[tuple[str, datetime, datetime]] = []
    hour_owner: list[int] = []
    raw: list[tuple[str, datetime, datetime]] = []
    raw_owner: list[int] = []
    for i, (customer, a, b) in enumerate(utc_spans):
        if a >= b or i in partials:
            continue
        whole, edges = _split_hours(a, b) if rolled else (None, [(a, b)])
        if whole is not None:
            hours.append((customer, *whole))
            hour_owner.append(i)
        raw += [(customer, lo, hi) for lo, hi in edges]
        raw_owner += [i] * len(edges)

    def add(rows: list[tuple[int, tuple[str | None, ...], Partial]], owners: list[int]) -> None:
        for idx, _, part in rows:
            owner = owners[idx - 1]
            partials[owner] = agg.merge(partials[owner], part) if owner in partials else part

    def where(of: Sequence[tuple[str, datetime, datetime]], cutoff: datetime | None = None) -> str:
        lo, hi = min(s[1] for s in of), max(s[2] for s in of)
        return " AND ".join(base_conditions(d, meter, start=lo, end=hi, customer=None, as_of=cutoff))

    if not rolled:
        if raw:
            source = f"events e {d.spans_join(raw)} WHERE {where(raw, as_of)}"
            sql = agg.raw_select(d, value=value_expr(d, meter), groups=[], source=source)
            add(_read_partials(session, sql, d, agg, 0), raw_owner)
    elif hours or raw:
        branches = []
        if hours:
            lo, hi = min(s[1] for s in hours), max(s[2] for s in hours)
            roll_where = (
                f"r.meter_key = {d.bind(meter.key)} AND r.bucket_start >= {d.bind(d.ts(lo))} "
                f"AND r.bucket_start < {d.bind(d.ts(hi))}"
            )
            join = d.spans_join(hours, column="r.bucket_start", customer="r.customer")
            branches.append(f"SELECT bk.idx AS idx, {_ROLLED_COLUMNS} FROM meter_rollups r {join} WHERE {roll_where}")
            # only the spans' customers' pending rows, by index, however long the backlog
            of_customers = d.in_list(sorted({s[0] for s in hours}), "text")
            branches.append(
                f"SELECT bk.idx AS idx, {_event_columns(d, meter)} "
                f"FROM {d.pending_events(of_customers)} {d.spans_join(hours)} WHERE {where(hours)}"
            )
        if raw:  # the edges' events, rolled up or not; numbered after the hours' spans
            branches.append(
                f"SELECT bk.idx + {len(hours)} AS idx, {_event_columns(d, meter)} "
                f"FROM events e {d.spans_join(raw)} WHERE {where(raw)}"
            )
        owners = hour_owner + raw_owner
        if as_of is not None:
            branches += _as_of_branches(d, meter, utc_spans, as_of, first=len(owners))
        rows = _read_partials(session, _combined_sql(d, meter, branches, 0), d, agg, 0)
        if as_of is not None:
            n = len(utc_spans)
            if not any(idx == 0 for idx, _, _ in rows):
                return None
            found = {idx: part for idx, _, part in rows}
            add([r for r in rows if 0 < r[0] <= len(owners)], owners)
            nothing = Partial(None)
            for i in range(n):
                less = found.get(len(owners) + 1 + i, nothing)
                more = found.get(len(owners) + 1 + n + i, nothing)
                if less.value is not None or more.value is not None:
                    partials[i] = agg.correct(partials.get(i, nothing), less, more)
        else:
            add(rows, owners)
    out: list[Decimal | None] = []
    for i in range(len(utc_spans)):
        value = partials[i].value if i in partials else None
        out.append(agg.empty if value is None else value)
    return out


def _as_of_branches(
    d: Dialect, meter: MeterDefinition, spans: Sequence[tuple[str, datetime, datetime]], as_of: datetime, *, first: int
) -> list[str]:
    """The branches of a read through the rollups as of ``as_of`` (see :func:`usage_totals`):
    span ``i`` (0-based) of ``spans`` as ``idx`` ``first + 1 + i`` for its events ingested after
    ``as_of`` and not voided (counted in the present value: to take off), ``first + 1 + n + i``
    for its events ingested by ``as_of`` and voided after it (not counted: to add), and one row
    ``idx`` 0 if the meter's rollups are (still) ready in the statement's snapshot."""
    valid = [s if s[1] < s[2] else (s[0], s[1], s[1]) for s in spans]
    lo, hi = min(s[1] for s in valid), max(s[2] for s in valid)
    cutoff = d.ts(as_of)
    late = base_conditions(d, meter, start=lo, end=hi, customer=None, as_of=None)
    late.append(f"e.ingested_at > {d.bind(cutoff)}")
    voided = base_conditions(d, meter, start=lo, end=hi, customer=None, as_of=as_of)
    voided.append(f"e.voided_at IS NOT NULL AND e.voided_at > {d.bind(cutoff)}")
    n = len(spans)
    return [
        f"SELECT bk.idx + {first} AS idx, {_event_columns(d, meter)} "
        f"FROM events e {d.spans_join(valid)} WHERE {' AND '.join(late)}",
        f"SELECT bk.idx + {first + n} AS idx, {_event_columns(d, meter)} "
        f"FROM events e {d.spans_join(valid)} WHERE {' AND '.join(voided)}",
        "SELECT 0 AS idx, 0 AS n, NULL AS vs, NULL AS vmin, NULL AS vmax, NULL AS la, NULL AS li, NULL AS lv "
        f"FROM meters WHERE key = {d.bind(meter.key)} AND rollup_status = 'ready'",
    ]
