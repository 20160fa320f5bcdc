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
from tollway.meter.aggregations import REGISTRY, Aggregation, Partial
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import Dialect, base_conditions, dialect_of, value_expr

__all__ = ["UsageValue", "query_usage"]


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


def _rollup_partials(
    session: Session,
    meter: MeterDefinition,
    bounds: Sequence[tuple[datetime, datetime]],
    *,
    customer: str | None,
    group_by: Sequence[str],
) -> list[tuple[int, tuple[str | None, ...], Partial]]:
    """Aggregate per bound (each bound is whole UTC hours) and group: the meter's hourly rollups
    plus the events not rolled up yet (``rollup_pending``), in one statement so both are read in
    one snapshot and an event the worker rolls up meanwhile is counted exactly once."""
    d = dialect_of(session)
    start, end = bounds[0][0], bounds[-1][1]
    roll_where = [
        f"r.meter_key = {d.bind(meter.key)}",
        f"r.bucket_start >= {d.bind(d.ts(start))}",
        f"r.bucket_start < {d.bind(d.ts(end))}",
    ]
    if customer is not None:
        roll_where.append(f"r.customer = {d.bind(customer)}")
    roll_groups = "".join(
        f", {d.json_item('r.group_key', meter.group_by.index(p))} AS g{i}" for i, p in enumerate(group_by)
    )
    rolled = (
        f"SELECT bk.idx AS idx{roll_groups}, r.event_count AS n, r.value_sum AS vs, r.value_min AS vmin, "
        "r.value_max AS vmax, r.latest_at AS la, r.latest_id AS li, r.latest_value AS lv "
        f"FROM meter_rollups r {d.buckets_join(bounds, column='r.bucket_start')} WHERE {' AND '.join(roll_where)}"
    )
    v = value_expr(d, meter)
    raw_groups = "".join(f", {d.text_value(p)} AS g{i}" for i, p in enumerate(group_by))
    raw_where = base_conditions(d, meter, start=start, end=end, customer=customer, as_of=None)
    pending = (
        f"SELECT bk.idx AS idx{raw_groups}, 1 AS n, {v} AS vs, {v} AS vmin, {v} AS vmax, "
        f"e.timestamp AS la, e.id AS li, {v} AS lv "
        f"FROM {d.pending_events()} {d.buckets_join(bounds)} "
        f"WHERE {' AND '.join(raw_where)}"
    )
    agg = REGISTRY[meter.aggregation]
    gcols = "".join(f", u.g{i}" for i in range(len(group_by)))
    positions = ", ".join(str(i + 1) for i in range(1 + len(group_by)))
    sql = f"SELECT u.idx{gcols}, {agg.from_rollups(d)} FROM ({rolled} UNION ALL {pending}) u GROUP BY {positions}"
    return _read_partials(session, sql, d, agg, len(group_by))


def _ceil_hour(t: datetime) -> datetime:
    floor = t.replace(minute=0, second=0, microsecond=0)
    return floor if floor == t else add_clamped(floor, timedelta(hours=1))


def _floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


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
    being built), are read from the raw
    events. ``as_of`` counts only events
    ingested at or before that moment, so a past computation (an invoice) can be reproduced.
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

    if not rollups:
        add(
            _raw_partials(session, meter, bounds, customer=customer, group_by=group_by, as_of=as_of),
            list(range(len(bounds))),
        )
    else:
        hour_bounds: list[tuple[datetime, datetime]] = []
        hour_owner: list[int] = []
        raw_bounds: list[tuple[datetime, datetime]] = []
        raw_owner: list[int] = []
        for i, (a, b) in enumerate(bounds):
            ha, hb = _ceil_hour(a), _floor_hour(b)
            if ha >= hb:
                raw_bounds.append((a, b))
                raw_owner.append(i)
                continue
            hour_bounds.append((ha, hb))
            hour_owner.append(i)
            for lo, hi in ((a, ha), (hb, b)):
                if lo < hi:
                    raw_bounds.append((lo, hi))
                    raw_owner.append(i)
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
