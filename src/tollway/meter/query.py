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
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from tollway.kit.time import add_clamped
from tollway.kit.time import windows as make_windows
from tollway.meter.aggregations import REGISTRY
from tollway.meter.schemas import check_path
from tollway.models import Meter


@dataclass(frozen=True)
class MeterDefinition:
    key: str
    event_type: str
    aggregation: str
    value_property: str | None = None
    filters: tuple[dict[str, Any], ...] = ()
    group_by: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Meter) -> MeterDefinition:
        return cls(
            key=row.key,
            event_type=row.event_type,
            aggregation=row.aggregation,
            value_property=row.value_property,
            filters=tuple(row.filters or ()),
            group_by=tuple(row.group_by or ()),
        )


@dataclass(frozen=True)
class UsageValue:
    start: datetime
    end: datetime
    value: Decimal | None
    groups: dict[str, str | None] = field(default_factory=dict)


class _Dialect:
    name: str

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._n = 0

    def bind(self, value: Any) -> str:
        self._n += 1
        key = f"p{self._n}"
        self.params[key] = value
        return f":{key}"

    # Overridden per dialect -------------------------------------------------------------
    def typeof(self, path: str) -> str:
        raise NotImplementedError

    def text_value(self, path: str) -> str:
        raise NotImplementedError

    def number(self, path: str) -> str:
        raise NotImplementedError

    def is_string(self, path: str) -> str:
        raise NotImplementedError

    def is_bool(self, path: str) -> str:
        raise NotImplementedError

    def ts(self, value: datetime) -> Any:
        raise NotImplementedError

    def number_param(self, value: int | float | str) -> Any:
        raise NotImplementedError

    def buckets_join(self, bounds: Sequence[tuple[datetime, datetime]], column: str = "e.timestamp") -> str:
        raise NotImplementedError

    def hour_of(self, column: str) -> str:
        """The UTC hour an instant falls in, in the column's own representation."""
        raise NotImplementedError

    def pending_events(self) -> str:
        """FROM clause of the events not rolled up yet, as ``e`` (``p`` is the pending row)."""
        return "rollup_pending p JOIN events e ON e.id = p.event_id"

    def json_array(self, items: Sequence[str]) -> str:
        raise NotImplementedError

    def json_item(self, column: str, index: int) -> str:
        raise NotImplementedError

    def decimal_sum(self, expr: str) -> str:
        raise NotImplementedError

    def in_list(self, values: Sequence[Any], sql_type: str) -> str:
        """``IN`` a list of values of ``sql_type`` (``text`` or ``numeric``), bound as one
        parameter whatever its length: no limit on bound variables, no deep ``OR`` tree."""
        raise NotImplementedError

    def exists(self, path: str) -> str:
        t = self.typeof(path)
        return f"({t} IS NOT NULL AND {t} <> 'null')"


class _Postgres(_Dialect):
    name = "postgresql"

    @staticmethod
    def _lit(path: str) -> str:
        # Each element quoted: an unquoted NULL (any case) in an array literal is SQL NULL, and
        # a path holding NULL finds nothing (a property named "null" summed to 0).
        return "'{" + ",".join(f'"{p}"' for p in check_path(path).split(".")) + "}'"

    def typeof(self, path: str) -> str:
        return f"jsonb_typeof(e.properties #> {self._lit(path)})"

    def text_value(self, path: str) -> str:
        return f"(e.properties #>> {self._lit(path)})"

    def number(self, path: str) -> str:
        return f"(CASE WHEN {self.typeof(path)} = 'number' THEN (e.properties #>> {self._lit(path)})::numeric END)"

    def is_string(self, path: str) -> str:
        return f"{self.typeof(path)} = 'string'"

    def is_bool(self, path: str) -> str:
        return f"{self.typeof(path)} = 'boolean'"

    def ts(self, value: datetime) -> Any:
        return value.astimezone(UTC).replace(tzinfo=None)

    def number_param(self, value: int | float | str) -> Any:
        return Decimal(str(value))

    def buckets_join(self, bounds: Sequence[tuple[datetime, datetime]], column: str = "e.timestamp") -> str:
        lo = self.bind([self.ts(a) for a, _ in bounds])
        hi = self.bind([self.ts(b) for _, b in bounds])
        return (
            f"JOIN unnest(CAST({lo} AS timestamp[]), CAST({hi} AS timestamp[])) WITH ORDINALITY AS bk(lo, hi, idx) "
            f"ON {column} >= bk.lo AND {column} < bk.hi"
        )

    def hour_of(self, column: str) -> str:
        return f"date_trunc('hour', {column})"

    def pending_events(self) -> str:
        # The (small) pending table must drive the join: otherwise the planner, misjudging how
        # many of a customer's events a window holds, scans them all by index and only then looks
        # for pending ones (23 ms instead of 4 for 10,000 events). OFFSET 0 keeps the LATERAL
        # subquery from being flattened, so it runs once per pending row, by primary key.
        return "rollup_pending p CROSS JOIN LATERAL (SELECT * FROM events e0 WHERE e0.id = p.event_id OFFSET 0) e"

    def json_array(self, items: Sequence[str]) -> str:
        return f"jsonb_build_array({', '.join(items)})::text" if items else "'[]'"

    def json_item(self, column: str, index: int) -> str:
        return f"(({column})::jsonb ->> {int(index)})"

    def decimal_sum(self, expr: str) -> str:
        return f"SUM({expr})"

    def in_list(self, values: Sequence[Any], sql_type: str) -> str:
        return f"= ANY(CAST({self.bind(list(values))} AS {sql_type}[]))"


class _Sqlite(_Dialect):
    name = "sqlite"

    @staticmethod
    def _lit(path: str) -> str:
        return "'$" + "".join(f'."{p}"' for p in check_path(path).split(".")) + "'"

    def typeof(self, path: str) -> str:
        return f"json_type(e.properties, {self._lit(path)})"

    def text_value(self, path: str) -> str:
        t, v = self.typeof(path), f"json_extract(e.properties, {self._lit(path)})"
        return (
            f"(CASE {t} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL "
            f"ELSE CAST({v} AS TEXT) END)"
        )

    def number(self, path: str) -> str:
        t, v = self.typeof(path), f"json_extract(e.properties, {self._lit(path)})"
        return f"(CASE WHEN {t} IN ('integer', 'real') THEN {v} END)"

    def is_string(self, path: str) -> str:
        return f"{self.typeof(path)} = 'text'"

    def is_bool(self, path: str) -> str:
        return f"{self.typeof(path)} IN ('true', 'false')"

    def ts(self, value: datetime) -> Any:
        # The text form SQLAlchemy stores DateTime in on SQLite, so comparisons are chronological
        # (isoformat pads the year to four digits; strftime("%Y") does not on every platform).
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def number_param(self, value: int | float | str) -> Any:
        d = Decimal(str(value))
        return int(d) if d == d.to_integral_value() and abs(d) < 2**63 else float(d)

    def buckets_join(self, bounds: Sequence[tuple[datetime, datetime]], column: str = "e.timestamp") -> str:
        doc = self.bind(orjson.dumps([[self.ts(a), self.ts(b)] for a, b in bounds]).decode())
        return (
            "JOIN (SELECT CAST(key AS INTEGER) + 1 AS idx, json_extract(value, '$[0]') AS lo, "
            f"json_extract(value, '$[1]') AS hi FROM json_each({doc})) AS bk "
            f"ON {column} >= bk.lo AND {column} < bk.hi"
        )

    def hour_of(self, column: str) -> str:
        return f"strftime('%Y-%m-%d %H:00:00.000000', {column})"

    def json_array(self, items: Sequence[str]) -> str:
        return f"json_array({', '.join(items)})" if items else "'[]'"

    def json_item(self, column: str, index: int) -> str:
        return f"json_extract({column}, '$[{int(index)}]')"

    def decimal_sum(self, expr: str) -> str:
        return f"tw_decimal_sum({expr})"

    def in_list(self, values: Sequence[Any], sql_type: str) -> str:
        return f"IN (SELECT value FROM json_each({self.bind(orjson.dumps(list(values)).decode())}))"


def _dialect(session: Session) -> _Dialect:
    return dialect_for(session.get_bind().dialect.name)


def dialect_for(name: str) -> _Dialect:
    if name == "postgresql":
        return _Postgres()
    if name == "sqlite":
        return _Sqlite()
    raise RuntimeError(f"unsupported database dialect {name!r}")


def _eq(d: _Dialect, path: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"({d.text_value(path)} = {d.bind('true' if value else 'false')} AND {d.is_bool(path)})"
    if isinstance(value, int | float):
        return f"({d.number(path)} = {d.bind(d.number_param(value))})"
    return f"({d.text_value(path)} = {d.bind(str(value))} AND {d.is_string(path)})"


def _any_of(d: _Dialect, path: str, values: Sequence[Any]) -> str:
    """``path`` equals one of ``values``, each compared as :func:`_eq` compares it (a string with
    strings, a number numerically, a boolean with booleans): one list per JSON type."""
    strings = [v for v in values if isinstance(v, str)]
    numbers = [d.number_param(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    booleans = sorted({"true" if v else "false" for v in values if isinstance(v, bool)})
    parts = []
    if strings:
        parts.append(f"({d.text_value(path)} {d.in_list(strings, 'text')} AND {d.is_string(path)})")
    if numbers:
        parts.append(f"({d.number(path)} {d.in_list(numbers, 'numeric')})")
    if booleans:
        parts.append(f"({d.text_value(path)} {d.in_list(booleans, 'text')} AND {d.is_bool(path)})")
    return "(" + (" OR ".join(parts) or "FALSE") + ")"


_CMP = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def filter_sql(d: _Dialect, flt: dict[str, Any]) -> str:
    """One meter filter as a SQL condition. ``neq``/``not_in`` also match events without the
    property (they are the negation of ``eq``/``in``); the other ops need it present."""
    path, op, value = str(flt["property"]), str(flt["op"]), flt.get("value")
    if op == "eq":
        return _eq(d, path, value)
    if op == "neq":
        return f"NOT COALESCE({_eq(d, path, value)}, FALSE)"
    if op in ("in", "not_in"):
        any_of = _any_of(d, path, list(value or ()))
        return any_of if op == "in" else f"NOT COALESCE({any_of}, FALSE)"
    if op in _CMP:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"({d.number(path)} {_CMP[op]} {d.bind(d.number_param(value))})"
        return f"({d.text_value(path)} {_CMP[op]} {d.bind(str(value))} AND {d.is_string(path)})"
    if op == "exists":
        return d.exists(path) if value in (None, True) else f"NOT {d.exists(path)}"
    raise ValueError(f"unknown filter op {op!r}")


def _to_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def base_conditions(
    d: _Dialect,
    meter: MeterDefinition,
    *,
    start: datetime,
    end: datetime,
    customer: str | None,
    as_of: datetime | None,
) -> list[str]:
    """The conditions every read of a meter's events shares: type, time range, not voided,
    ingested by ``as_of``, the meter's filters, and a usable value for value aggregations."""
    where = [
        f"e.type = {d.bind(meter.event_type)}",
        f"e.timestamp >= {d.bind(d.ts(start))}",
        f"e.timestamp < {d.bind(d.ts(end))}",
    ]
    if customer is not None:
        where.insert(0, f"e.customer = {d.bind(customer)}")
    if as_of is None:
        where.append("e.voided_at IS NULL")
    else:  # as it was then: ingested by then, and not yet voided then
        cutoff = d.bind(d.ts(as_of))
        where.append(f"e.ingested_at <= {cutoff} AND (e.voided_at IS NULL OR e.voided_at > {cutoff})")
    where += [filter_sql(d, f) for f in meter.filters]
    agg = REGISTRY[meter.aggregation]
    if agg.value_kind == "number":
        assert meter.value_property
        where.append(f"{d.number(meter.value_property)} IS NOT NULL")
    return where


def value_expr(d: _Dialect, meter: MeterDefinition) -> str:
    agg = REGISTRY[meter.aggregation]
    if agg.value_kind == "number":
        assert meter.value_property
        return d.number(meter.value_property)
    if agg.value_kind == "text":
        assert meter.value_property
        return d.text_value(meter.value_property)
    return "NULL"


@dataclass
class _Partial:
    """A mergeable partial aggregate of one window and group."""

    value: Decimal | None
    latest_key: tuple[str, str] | None = None  # (timestamp as text, event id) of the latest value


def _merge(aggregation: str, a: _Partial, b: _Partial) -> _Partial:
    if a.value is None:
        return b
    if b.value is None:
        return a
    if aggregation in ("count", "sum"):
        return _Partial(a.value + b.value)
    if aggregation == "max":
        return _Partial(max(a.value, b.value))
    if aggregation == "min":
        return _Partial(min(a.value, b.value))
    if aggregation == "latest":
        return a if (a.latest_key or ("", "")) >= (b.latest_key or ("", "")) else b
    raise ValueError(f"{aggregation} partials cannot be merged")


def _key_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(value)


def _raw_partials(
    session: Session,
    meter: MeterDefinition,
    bounds: Sequence[tuple[datetime, datetime]],
    *,
    customer: str | None,
    group_by: Sequence[str],
    as_of: datetime | None,
) -> list[tuple[int, tuple[str | None, ...], _Partial]]:
    """Aggregate raw events per bound (1-based index into ``bounds``) and group."""
    agg = REGISTRY[meter.aggregation]
    d = _dialect(session)
    where = base_conditions(d, meter, start=bounds[0][0], end=bounds[-1][1], customer=customer, as_of=as_of)
    value = value_expr(d, meter)
    group_exprs = [d.text_value(p) for p in group_by]
    group_cols = "".join(f", {g} AS g{i}" for i, g in enumerate(group_exprs))
    join = d.buckets_join(bounds)
    cond = " AND ".join(where)
    if agg.name == "latest":
        partition = ", ".join(["bk.idx", *group_exprs])
        gcols = "".join(f", g{i}" for i in range(len(group_exprs)))
        sql = (
            f"SELECT idx{gcols}, ts, id, value FROM "
            f"(SELECT bk.idx AS idx{group_cols}, e.timestamp AS ts, e.id AS id, "
            f"{value} AS value, "
            f"ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY e.timestamp DESC, e.id DESC) AS rn "
            f"FROM events e {join} WHERE {cond}) t WHERE rn = 1"
        )
    else:
        template = agg.sql_postgres if d.name == "postgresql" else agg.sql_sqlite
        assert template is not None
        positions = ", ".join(str(i + 1) for i in range(1 + len(group_exprs)))
        sql = (
            f"SELECT bk.idx AS idx{group_cols}, {template.format(v=value)} AS value "
            f"FROM events e {join} WHERE {cond} GROUP BY {positions}"
        )
    out = []
    n = len(group_by)
    for r in session.execute(text(sql), d.params).all():
        groups = tuple(None if g is None else str(g) for g in r[1 : 1 + n])
        key = (_key_text(r[1 + n]), str(r[2 + n])) if agg.name == "latest" else None
        out.append((int(r[0]), groups, _Partial(_to_decimal(r[-1]), key)))
    return out


def _rollup_partials(
    session: Session,
    meter: MeterDefinition,
    bounds: Sequence[tuple[datetime, datetime]],
    *,
    customer: str | None,
    group_by: Sequence[str],
) -> list[tuple[int, tuple[str | None, ...], _Partial]]:
    """Aggregate per bound (each bound is whole UTC hours) and group: the meter's hourly rollups
    plus the events not rolled up yet (``rollup_pending``), in one statement so both are read in
    one snapshot and an event the worker rolls up meanwhile is counted exactly once."""
    d = _dialect(session)
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
    gcols = "".join(f", u.g{i}" for i in range(len(group_by)))
    positions = ", ".join(str(i + 1) for i in range(1 + len(group_by)))
    aggregation = meter.aggregation
    if aggregation == "count":
        value = "SUM(u.n)"
    elif aggregation == "sum":
        value = d.decimal_sum("u.vs")
    elif aggregation in ("max", "min"):
        value = f"{aggregation.upper()}(u.v{aggregation})"
    elif d.name == "postgresql":  # latest
        value = (
            "MAX(u.la), (array_agg(u.li ORDER BY u.la DESC, u.li DESC))[1], "
            "(array_agg(u.lv ORDER BY u.la DESC, u.li DESC))[1]"
        )
    else:  # SQLite returns the other columns of the row where the single MAX() was found
        value = "MAX(u.la || ' ' || u.li), u.la, u.li, u.lv"
    sql = f"SELECT u.idx{gcols}, {value} FROM ({rolled} UNION ALL {pending}) u GROUP BY {positions}"
    out = []
    n = len(group_by)
    for r in session.execute(text(sql), d.params).all():
        groups = tuple(None if g is None else str(g) for g in r[1 : 1 + n])
        key = (_key_text(r[-3]), str(r[-2])) if aggregation == "latest" else None
        out.append((int(r[0]), groups, _Partial(_to_decimal(r[-1]), key)))
    return out


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
    (``as_of``, ``unique_count``, a group the meter does not declare), are read from the raw
    events. ``as_of`` counts only events
    ingested at or before that moment, so a past computation (an invoice) can be reproduced.
    """
    bounds = make_windows(start.astimezone(UTC), end.astimezone(UTC), window, tz or ZoneInfo("UTC"))
    if not bounds:
        return []
    agg = REGISTRY[meter.aggregation]
    group_by = tuple(group_by)
    rollups = use_rollups and as_of is None and agg.name != "unique_count" and set(group_by) <= set(meter.group_by)
    partials: dict[tuple[int, tuple[str | None, ...]], _Partial] = {}

    def add(rows: list[tuple[int, tuple[str | None, ...], _Partial]], owners: list[int]) -> None:
        for idx, groups, part in rows:
            key = (owners[idx - 1], groups)
            partials[key] = _merge(agg.name, partials[key], part) if key in partials else part

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
