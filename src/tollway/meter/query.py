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
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

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

    def buckets_join(self, bounds: Sequence[tuple[datetime, datetime]]) -> str:
        raise NotImplementedError

    def exists(self, path: str) -> str:
        t = self.typeof(path)
        return f"({t} IS NOT NULL AND {t} <> 'null')"


class _Postgres(_Dialect):
    name = "postgresql"

    @staticmethod
    def _lit(path: str) -> str:
        return "'{" + ",".join(check_path(path).split(".")) + "}'"

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

    def buckets_join(self, bounds: Sequence[tuple[datetime, datetime]]) -> str:
        lo = self.bind([self.ts(a) for a, _ in bounds])
        hi = self.bind([self.ts(b) for _, b in bounds])
        return (
            f"JOIN unnest(CAST({lo} AS timestamp[]), CAST({hi} AS timestamp[])) WITH ORDINALITY AS bk(lo, hi, idx) "
            "ON e.timestamp >= bk.lo AND e.timestamp < bk.hi"
        )


class _Sqlite(_Dialect):
    name = "sqlite"

    @staticmethod
    def _lit(path: str) -> str:
        return "'$" + "".join(f'."{p}"' for p in check_path(path).split(".")) + "'"

    def typeof(self, path: str) -> str:
        return f"json_type(e.properties, {self._lit(path)})"

    def text_value(self, path: str) -> str:
        t, v = self.typeof(path), f"json_extract(e.properties, {self._lit(path)})"
        return f"(CASE {t} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL ELSE CAST({v} AS TEXT) END)"

    def number(self, path: str) -> str:
        t, v = self.typeof(path), f"json_extract(e.properties, {self._lit(path)})"
        return f"(CASE WHEN {t} IN ('integer', 'real') THEN {v} END)"

    def is_string(self, path: str) -> str:
        return f"{self.typeof(path)} = 'text'"

    def is_bool(self, path: str) -> str:
        return f"{self.typeof(path)} IN ('true', 'false')"

    def ts(self, value: datetime) -> Any:
        # The text form SQLAlchemy stores DateTime in on SQLite, so comparisons are chronological.
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def number_param(self, value: int | float | str) -> Any:
        d = Decimal(str(value))
        return int(d) if d == d.to_integral_value() and abs(d) < 2**63 else float(d)

    def buckets_join(self, bounds: Sequence[tuple[datetime, datetime]]) -> str:
        doc = self.bind(orjson.dumps([[self.ts(a), self.ts(b)] for a, b in bounds]).decode())
        return (
            "JOIN (SELECT CAST(key AS INTEGER) + 1 AS idx, json_extract(value, '$[0]') AS lo, "
            f"json_extract(value, '$[1]') AS hi FROM json_each({doc})) AS bk "
            "ON e.timestamp >= bk.lo AND e.timestamp < bk.hi"
        )


def _dialect(session: Session) -> _Dialect:
    name = session.get_bind().dialect.name
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
        any_of = "(" + " OR ".join(_eq(d, path, v) for v in list(value or ())) + ")"
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
) -> list[UsageValue]:
    """The meter's value per window ``[start, end)`` (and per group), for one customer or all.

    ``as_of`` counts only events ingested at or before that moment, so a past computation (an
    invoice) can be reproduced exactly.
    """
    bounds = make_windows(start, end, window, tz or ZoneInfo("UTC"))
    if not bounds:
        return []
    agg = REGISTRY[meter.aggregation]
    d = _dialect(session)
    where = [
        f"e.type = {d.bind(meter.event_type)}",
        f"e.timestamp >= {d.bind(d.ts(start))}",
        f"e.timestamp < {d.bind(d.ts(end))}",
        "e.voided_at IS NULL",
    ]
    if customer is not None:
        where.insert(0, f"e.customer = {d.bind(customer)}")
    if as_of is not None:
        where.append(f"e.ingested_at <= {d.bind(d.ts(as_of))}")
    where += [filter_sql(d, f) for f in meter.filters]
    value_expr = "NULL"
    if agg.value_kind == "number":
        assert meter.value_property
        value_expr = d.number(meter.value_property)
        where.append(f"{value_expr} IS NOT NULL")
    elif agg.value_kind == "text":
        assert meter.value_property
        value_expr = d.text_value(meter.value_property)
    group_exprs = [d.text_value(p) for p in group_by]
    group_cols = "".join(f", {g} AS g{i}" for i, g in enumerate(group_exprs))
    join = d.buckets_join(bounds)
    cond = " AND ".join(where)
    if agg.name == "latest":
        partition = ", ".join(["bk.idx", *group_exprs])
        gcols = "".join(f", g{i}" for i in range(len(group_exprs)))
        sql = (
            f"SELECT idx{gcols}, value FROM (SELECT bk.idx AS idx{group_cols}, {value_expr} AS value, "
            f"ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY e.timestamp DESC, e.id DESC) AS rn "
            f"FROM events e {join} WHERE {cond}) t WHERE rn = 1"
        )
    else:
        template = agg.sql_postgres if d.name == "postgresql" else agg.sql_sqlite
        assert template is not None
        positions = ", ".join(str(i + 1) for i in range(1 + len(group_exprs)))
        sql = (
            f"SELECT bk.idx AS idx{group_cols}, {template.format(v=value_expr)} AS value "
            f"FROM events e {join} WHERE {cond} GROUP BY {positions}"
        )
    rows = session.execute(text(sql), d.params).all()

    if not group_by:
        found = {int(r[0]): _to_decimal(r[-1]) for r in rows}
        return [
            UsageValue(a, b, found.get(i + 1, agg.empty) if (i + 1) in found else agg.empty)
            for i, (a, b) in enumerate(bounds)
        ]
    out = []
    for r in rows:
        a, b = bounds[int(r[0]) - 1]
        groups = {p: (None if r[1 + i] is None else str(r[1 + i])) for i, p in enumerate(group_by)}
        out.append(UsageValue(a, b, _to_decimal(r[-1]), groups))
    out.sort(key=lambda u: (u.start, [(v is None, v or "") for v in u.groups.values()]))
    return out
