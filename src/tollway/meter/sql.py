"""Meter SQL per database, shared by every statement that reads events for a meter.

The dialects render property access, filters and aggregates (PostgreSQL ``jsonb`` operators,
SQLite JSON1 functions); :func:`filter_sql`, :func:`value_expr` and :func:`base_conditions` turn
a meter into SQL conditions and expressions over the events aliased ``e``. Used by usage
queries (``meter.query``), rollups (``meter.rollup``), billing reads (``meter.values``) and the
event store. Property paths are validated when the meter is created (``schemas.check_path``) and
are the only text rendered into SQL; every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from tollway.meter.aggregations import REGISTRY
from tollway.meter.definition import MeterDefinition
from tollway.meter.schemas import check_path

__all__ = [
    "Dialect",
    "Postgres",
    "Sqlite",
    "base_conditions",
    "dialect_for",
    "dialect_of",
    "filter_sql",
    "meter_conditions",
    "not_pending",
    "pending",
    "reads_value",
    "value_expr",
]

WATERMARK = "(SELECT next_tx FROM rollup_watermark)"
"""The first ``events.tx`` not folded yet (``models.RollupWatermark``), as a scalar subquery: read
in the statement that uses it, so in the same snapshot as the rollups it goes with."""


def pending(alias: str = "e") -> str:
    """SQL: the event ``alias`` is pending, stored but not folded into the rollups, the period
    sets and the limits' counters yet (``meter.fold.apply_pending`` folds it). The one
    definition of pending: ``tx`` is set (a folded meter counted the event's type when it was
    stored) and not below the watermark. An event with ``tx`` NULL is never pending."""
    return f"{alias}.tx >= {WATERMARK}"


PENDING_COUNT_SQL = f"SELECT count(*) FROM events e WHERE {pending('e')}"
"""How many events are pending (the worker's backlog; tests and benchmarks wait for 0)."""


def not_pending(alias: str = "e") -> str:
    """SQL: the negation of :func:`pending` (NULL ``tx`` included): the events a rebuild reads."""
    return f"({alias}.tx IS NULL OR {alias}.tx < {WATERMARK})"


class Dialect:
    """Renders meter SQL for one database and collects its bound parameters (``params``): one
    instance per statement."""

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
        """The property at ``path`` if it is a JSON number (else NULL), as a value SQL compares
        numerically: for filters. On SQLite a float, so not exact past 2**63 or 17 digits."""
        raise NotImplementedError

    def number_value(self, path: str) -> str:
        """The same number (NULL when :meth:`number` is) as an exact value, for the aggregates
        (:meth:`decimal_sum`, :meth:`decimal_min`, :meth:`decimal_max`) and what rollups keep."""
        return self.number(path)

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

    def spans_join(
        self, spans: Sequence[tuple[str, datetime, datetime]], column: str = "e.timestamp", customer: str = "e.customer"
    ) -> str:
        """Join the rows to ``spans`` (``(customer, lo, hi)``, 1-based ``bk.idx``): a row belongs to
        each span of its customer whose ``[lo, hi)`` holds ``column``. Spans may overlap (a row
        then counts in each); one parameter per column whatever the number of spans."""
        raise NotImplementedError

    def hour_of(self, column: str) -> str:
        """The UTC hour an instant falls in, in the column's own representation."""
        raise NotImplementedError

    def pending_events(self, customer: str | None = None) -> str:
        """FROM clause of the pending events (:func:`pending`), as ``e``; with ``customer`` (the
        rest of a condition on their ``customer`` column: ``= :p1``, ``= dp.customer``, an
        ``in_list``) only those customers', by the index on ``(customer, tx)``."""
        who = f" AND e0.customer {customer}" if customer is not None else ""
        return f"(SELECT * FROM events e0 WHERE {pending('e0')}{who}) e"

    def json_array(self, items: Sequence[str]) -> str:
        raise NotImplementedError

    def json_item(self, column: str, index: int) -> str:
        raise NotImplementedError

    def decimal_sum(self, expr: str) -> str:
        raise NotImplementedError

    def decimal_min(self, expr: str) -> str:
        return f"MIN({expr})"

    def decimal_max(self, expr: str) -> str:
        return f"MAX({expr})"

    def least(self, a: str, b: str) -> str:
        """The lesser of two exact values, NULL ignored."""
        return f"LEAST({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        """The greater of two exact values, NULL ignored."""
        return f"GREATEST({a}, {b})"

    def in_list(self, values: Sequence[Any], sql_type: str) -> str:
        """``IN`` a list of values of ``sql_type`` (``text`` or ``numeric``), bound as one
        parameter whatever its length: no limit on bound variables, no deep ``OR`` tree."""
        raise NotImplementedError

    def exists(self, path: str) -> str:
        t = self.typeof(path)
        return f"({t} IS NOT NULL AND {t} <> 'null')"


class Postgres(Dialect):
    name = "postgresql"

    @staticmethod
    def _get(path: str, *, as_text: bool = False) -> str:
        """The property at ``path``: ``->`` (``->>`` as text) with the key of a one-segment path,
        ``#>`` (``#>>``) with a text[] path otherwise (its literal is taken apart again for every
        row: a key is not)."""
        parts = check_path(path).split(".")  # letters, digits, '_' and '-': nothing to escape
        if len(parts) == 1:
            return f"(e.properties {'->>' if as_text else '->'} '{parts[0]}')"
        # Each element quoted: an unquoted NULL (any case) in an array literal is SQL NULL, and
        # a path holding NULL finds nothing (a property named "null" summed to 0).
        array = "'{" + ",".join(f'"{p}"' for p in parts) + "}'"
        return f"(e.properties {'#>>' if as_text else '#>'} {array})"

    def typeof(self, path: str) -> str:
        return f"jsonb_typeof{self._get(path)}"

    def text_value(self, path: str) -> str:
        return self._get(path, as_text=True)

    def number(self, path: str) -> str:
        # jsonb keeps a number as a numeric: cast, not printed and parsed again.
        return f"(CASE WHEN {self.typeof(path)} = 'number' THEN CAST({self._get(path)} AS numeric) END)"

    def is_string(self, path: str) -> str:
        return f"{self.typeof(path)} = 'string'"

    def is_bool(self, path: str) -> str:
        return f"{self.typeof(path)} = 'boolean'"

    def ts(self, value: datetime) -> Any:
        return value.astimezone(UTC).replace(tzinfo=None)

    def number_param(self, value: int | float | str) -> Any:
        return Decimal(str(value))

    def buckets_join(self, bounds: Sequence[tuple[datetime, datetime]], column: str = "e.timestamp") -> str:
        # Bounds are sorted and do not overlap, so the flat list lo1, hi1, lo2, hi2, ... is sorted
        # and width_bucket() finds a row's place in it by binary search: an odd position 2k-1 is
        # inside bound k, an even one in a gap between bounds. A range join against the bounds
        # compares every row with every bound (a month of every customer's rollups by day).
        edges = self.bind([self.ts(t) for bound in bounds for t in bound])
        return (
            f"JOIN LATERAL (SELECT (w.pos + 1) / 2 AS idx, w.pos FROM "
            f"(SELECT width_bucket({column}, CAST({edges} AS timestamp[])) AS pos) w) bk ON bk.pos % 2 = 1"
        )

    def spans_join(
        self, spans: Sequence[tuple[str, datetime, datetime]], column: str = "e.timestamp", customer: str = "e.customer"
    ) -> str:
        customers = self.bind([c for c, _, _ in spans])
        lo = self.bind([self.ts(a) for _, a, _ in spans])
        hi = self.bind([self.ts(b) for _, _, b in spans])
        return (
            f"JOIN unnest(CAST({customers} AS text[]), CAST({lo} AS timestamp[]), CAST({hi} AS timestamp[])) "
            f"WITH ORDINALITY AS bk(customer, lo, hi, idx) "
            f"ON {customer} = bk.customer AND {column} >= bk.lo AND {column} < bk.hi"
        )

    def hour_of(self, column: str) -> str:
        return f"date_trunc('hour', {column})"

    def pending_events(self, customer: str | None = None) -> str:
        # The (few) pending events must be found by tx first: otherwise the planner, misjudging
        # how many of a customer's events a window holds, may scan them all by the (customer,
        # type, timestamp) index and only then test tx. OFFSET 0 keeps the subquery from being
        # flattened, so the caller's conditions on type and time are not pushed into it and only
        # the (customer, tx) or (tx) index serves it.
        who = f" AND e0.customer {customer}" if customer is not None else ""
        return f"(SELECT * FROM events e0 WHERE {pending('e0')}{who} OFFSET 0) e"

    def json_array(self, items: Sequence[str]) -> str:
        return f"jsonb_build_array({', '.join(items)})::text" if items else "'[]'"

    def json_item(self, column: str, index: int) -> str:
        return f"(({column})::jsonb ->> {int(index)})"

    def decimal_sum(self, expr: str) -> str:
        return f"SUM({expr})"

    def in_list(self, values: Sequence[Any], sql_type: str) -> str:
        return f"= ANY(CAST({self.bind(list(values))} AS {sql_type}[]))"


class Sqlite(Dialect):
    name = "sqlite"

    @staticmethod
    def _lit(path: str) -> str:
        return "'$" + "".join(f'."{p}"' for p in check_path(path).split(".")) + "'"

    def typeof(self, path: str) -> str:
        return f"json_type(e.properties, {self._lit(path)})"

    def _integer(self, path: str, v: str) -> str:
        """The property at ``path``, an integer, exactly: SQLite's own integer within 64 bits
        (``v``, its json_extract), else (a float there) its digits, read from the JSON text by
        ``tw_json_integer`` (db.py): rare, so the Python call is too."""
        return f"(CASE WHEN typeof({v}) = 'integer' THEN {v} ELSE tw_json_integer(e.properties, {self._lit(path)}) END)"

    def text_value(self, path: str) -> str:
        # An integer as its digits, also past 2**63 (a float's text keeps 15 digits: distinct
        # ids would count as one).
        t, v = self.typeof(path), f"json_extract(e.properties, {self._lit(path)})"
        return (
            f"(CASE {t} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL "
            f"WHEN 'integer' THEN CAST({self._integer(path, v)} AS TEXT) ELSE CAST({v} AS TEXT) END)"
        )

    def number(self, path: str) -> str:
        t, v = self.typeof(path), f"json_extract(e.properties, {self._lit(path)})"
        return f"(CASE WHEN {t} IN ('integer', 'real') THEN {v} END)"

    def number_value(self, path: str) -> str:
        # A fraction as its float (the stored JSON holds its shortest repr: the decimal aggregates
        # read the same digits back), an integer exactly.
        t, v = self.typeof(path), f"json_extract(e.properties, {self._lit(path)})"
        return f"(CASE {t} WHEN 'real' THEN {v} WHEN 'integer' THEN {self._integer(path, v)} END)"

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

    def spans_join(
        self, spans: Sequence[tuple[str, datetime, datetime]], column: str = "e.timestamp", customer: str = "e.customer"
    ) -> str:
        doc = self.bind(orjson.dumps([[c, self.ts(a), self.ts(b)] for c, a, b in spans]).decode())
        return (
            "JOIN (SELECT CAST(key AS INTEGER) + 1 AS idx, json_extract(value, '$[0]') AS customer, "
            "json_extract(value, '$[1]') AS lo, json_extract(value, '$[2]') AS hi "
            f"FROM json_each({doc})) AS bk ON {customer} = bk.customer AND {column} >= bk.lo AND {column} < bk.hi"
        )

    def hour_of(self, column: str) -> str:
        return f"strftime('%Y-%m-%d %H:00:00.000000', {column})"

    def json_array(self, items: Sequence[str]) -> str:
        return f"json_array({', '.join(items)})" if items else "'[]'"

    def json_item(self, column: str, index: int) -> str:
        return f"json_extract({column}, '$[{int(index)}]')"

    def decimal_sum(self, expr: str) -> str:
        return f"tw_decimal_sum({expr})"

    # Decimal text compared as text would put "9" after "10": compared as decimals (db.py).
    def decimal_min(self, expr: str) -> str:
        return f"tw_decimal_min({expr})"

    def decimal_max(self, expr: str) -> str:
        return f"tw_decimal_max({expr})"

    def least(self, a: str, b: str) -> str:
        return f"tw_decimal_least({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"tw_decimal_greatest({a}, {b})"

    def in_list(self, values: Sequence[Any], sql_type: str) -> str:
        return f"IN (SELECT value FROM json_each({self.bind(orjson.dumps(list(values)).decode())}))"


def dialect_for(name: str) -> Dialect:
    """A fresh renderer for the database named ``name`` (``postgresql`` or ``sqlite``)."""
    if name == "postgresql":
        return Postgres()
    if name == "sqlite":
        return Sqlite()
    raise RuntimeError(f"unsupported database dialect {name!r}")


def dialect_of(bind: Session | Connection | Engine) -> Dialect:
    """A fresh renderer for the database ``bind`` (a session, connection or engine) is on."""
    return dialect_for((bind.get_bind() if isinstance(bind, Session) else bind).dialect.name)


def _eq(d: Dialect, path: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"({d.text_value(path)} = {d.bind('true' if value else 'false')} AND {d.is_bool(path)})"
    if isinstance(value, int | float):
        return f"({d.number(path)} = {d.bind(d.number_param(value))})"
    return f"({d.text_value(path)} = {d.bind(str(value))} AND {d.is_string(path)})"


def _any_of(d: Dialect, path: str, values: Sequence[Any]) -> str:
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


def filter_sql(d: Dialect, flt: dict[str, Any]) -> str:
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


def base_conditions(
    d: Dialect,
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
    if REGISTRY[meter.aggregation].value_kind == "number":
        where.append(f"{value_expr(d, meter)} IS NOT NULL")
    return where


def meter_conditions(d: Dialect, meter: MeterDefinition) -> list[str]:
    """The conditions for an event ``e`` to count for the meter, its time, customer and voiding
    aside: the meter's event type and filters. An aggregation that :func:`reads_value` also
    leaves out the events without one (``value_expr(d, meter) IS NOT NULL``)."""
    return [f"e.type = {d.bind(meter.event_type)}", *(filter_sql(d, f) for f in meter.filters)]


def reads_value(meter: MeterDefinition) -> bool:
    """Whether the meter's aggregation reads a value from the events (all but ``count``)."""
    return REGISTRY[meter.aggregation].value_kind != "none"


def value_expr(d: Dialect, meter: MeterDefinition) -> str:
    """The value the meter's aggregation reads from an event ``e``: its number, its text, or
    none (``NULL``, for ``count``)."""
    agg = REGISTRY[meter.aggregation]
    if agg.value_kind == "number":
        assert meter.value_property
        return d.number_value(meter.value_property)
    if agg.value_kind == "text":
        assert meter.value_property
        return d.text_value(meter.value_property)
    return "NULL"
