"""The SQL meter filters, values and aggregations render to, per database (no database needed).

Each row is (dialect, input, expected SQL, expected bound parameters). What the SQL computes is
tested against real databases in test_usage.py and test_rollups.py; these rows pin down the text,
so that a change to one dialect or one aggregation shows exactly which statement it changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tollway.meter.aggregations import REGISTRY, Partial
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import base_conditions, dialect_for, filter_sql, value_expr

PG_REGION = "(e.properties ->> 'region')"
PG_REGION_TYPE = "jsonb_typeof(e.properties -> 'region')"
PG_N = "(CASE WHEN jsonb_typeof(e.properties -> 'n') = 'number' THEN CAST((e.properties -> 'n') AS numeric) END)"
SQ_REGION_TYPE = """json_type(e.properties, '$."region"')"""
SQ_REGION_VALUE = """json_extract(e.properties, '$."region"')"""
SQ_REGION = (
    f"(CASE {SQ_REGION_TYPE} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL "
    f"WHEN 'integer' THEN CAST((CASE WHEN typeof({SQ_REGION_VALUE}) = 'integer' THEN {SQ_REGION_VALUE} "
    """ELSE tw_json_integer(e.properties, '$."region"') END) AS TEXT) """
    f"ELSE CAST({SQ_REGION_VALUE} AS TEXT) END)"
)
SQ_N = (
    """(CASE WHEN json_type(e.properties, '$."n"') IN ('integer', 'real') """
    """THEN json_extract(e.properties, '$."n"') END)"""
)
# What the aggregates read: an integer past 2**63 exactly (json_extract makes it a float).
SQ_N_VALUE = (
    """(CASE json_type(e.properties, '$."n"') WHEN 'real' THEN json_extract(e.properties, '$."n"') """
    """WHEN 'integer' THEN (CASE WHEN typeof(json_extract(e.properties, '$."n"')) = 'integer' """
    """THEN json_extract(e.properties, '$."n"') ELSE tw_json_integer(e.properties, '$."n"') END) END)"""
)

FILTERS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    (
        "postgresql",
        {"property": "region", "op": "eq", "value": "eu"},
        f"({PG_REGION} = :p1 AND {PG_REGION_TYPE} = 'string')",
        {"p1": "eu"},
    ),
    (
        "sqlite",
        {"property": "region", "op": "eq", "value": "eu"},
        f"({SQ_REGION} = :p1 AND {SQ_REGION_TYPE} = 'text')",
        {"p1": "eu"},
    ),
    (
        "postgresql",
        {"property": "region", "op": "neq", "value": "eu"},
        f"NOT COALESCE(({PG_REGION} = :p1 AND {PG_REGION_TYPE} = 'string'), FALSE)",
        {"p1": "eu"},
    ),
    (
        "sqlite",
        {"property": "region", "op": "neq", "value": "eu"},
        f"NOT COALESCE(({SQ_REGION} = :p1 AND {SQ_REGION_TYPE} = 'text'), FALSE)",
        {"p1": "eu"},
    ),
    ("postgresql", {"property": "n", "op": "gt", "value": 3}, f"({PG_N} > :p1)", {"p1": Decimal(3)}),
    ("sqlite", {"property": "n", "op": "gt", "value": 3}, f"({SQ_N} > :p1)", {"p1": 3}),
    ("sqlite", {"property": "n", "op": "lte", "value": 2.5}, f"({SQ_N} <= :p1)", {"p1": 2.5}),
    (
        "postgresql",
        {"property": "region", "op": "gte", "value": "m"},
        f"({PG_REGION} >= :p1 AND {PG_REGION_TYPE} = 'string')",
        {"p1": "m"},
    ),
    (
        "postgresql",
        {"property": "region", "op": "eq", "value": True},
        f"({PG_REGION} = :p1 AND {PG_REGION_TYPE} = 'boolean')",
        {"p1": "true"},
    ),
    (
        "sqlite",
        {"property": "region", "op": "eq", "value": False},
        f"({SQ_REGION} = :p1 AND {SQ_REGION_TYPE} IN ('true', 'false'))",
        {"p1": "false"},
    ),
    (
        "postgresql",
        {"property": "region", "op": "in", "value": ["eu", 7]},
        f"(({PG_REGION} = ANY(CAST(:p1 AS text[])) AND {PG_REGION_TYPE} = 'string') OR "
        "((CASE WHEN jsonb_typeof(e.properties -> 'region') = 'number' "
        "THEN CAST((e.properties -> 'region') AS numeric) END) = ANY(CAST(:p2 AS numeric[]))))",
        {"p1": ["eu"], "p2": [Decimal(7)]},
    ),
    (
        "sqlite",
        {"property": "region", "op": "not_in", "value": ["eu", "us"]},
        f"NOT COALESCE((({SQ_REGION} IN (SELECT value FROM json_each(:p1)) AND {SQ_REGION_TYPE} = 'text')), FALSE)",
        {"p1": '["eu","us"]'},
    ),
    ("postgresql", {"property": "region", "op": "in", "value": []}, "(FALSE)", {}),
    (
        "postgresql",
        {"property": "region", "op": "exists"},
        f"({PG_REGION_TYPE} IS NOT NULL AND {PG_REGION_TYPE} <> 'null')",
        {},
    ),
    (
        "sqlite",
        {"property": "region", "op": "exists", "value": False},
        f"NOT ({SQ_REGION_TYPE} IS NOT NULL AND {SQ_REGION_TYPE} <> 'null')",
        {},
    ),
    (
        "postgresql",
        {"property": "a.b", "op": "eq", "value": "x"},
        '((e.properties #>> \'{"a","b"}\') = :p1 AND jsonb_typeof(e.properties #> \'{"a","b"}\') = \'string\')',
        {"p1": "x"},
    ),
]


@pytest.mark.parametrize(("dialect", "flt", "sql", "params"), FILTERS)
def test_filter_sql(dialect: str, flt: dict[str, Any], sql: str, params: dict[str, Any]) -> None:
    d = dialect_for(dialect)
    assert filter_sql(d, flt) == sql
    assert d.params == params


def test_unknown_filter_op_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown filter op"):
        filter_sql(dialect_for("sqlite"), {"property": "x", "op": "like", "value": "a%"})


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(RuntimeError, match="unsupported database dialect"):
        dialect_for("mysql")


# (dialect, aggregation, aggregate over "v", aggregate over "v" where "c", rollup columns, read from rollups)
AGGREGATIONS: list[tuple[str, str, str, str, tuple[str, str, str], str]] = [
    ("postgresql", "count", "COUNT(*)", "COUNT(CASE WHEN c THEN 1 END)", ("NULL", "NULL", "NULL"), "SUM(u.n)"),
    ("sqlite", "count", "COUNT(*)", "COUNT(CASE WHEN c THEN 1 END)", ("NULL", "NULL", "NULL"), "SUM(u.n)"),
    ("postgresql", "sum", "SUM(v)", "SUM((CASE WHEN c THEN v END))", ("SUM(v)", "NULL", "NULL"), "SUM(u.vs)"),
    (
        "sqlite",
        "sum",
        "tw_decimal_sum(v)",
        "tw_decimal_sum((CASE WHEN c THEN v END))",
        ("tw_decimal_sum(v)", "NULL", "NULL"),
        "tw_decimal_sum(u.vs)",
    ),
    ("postgresql", "max", "MAX(v)", "MAX((CASE WHEN c THEN v END))", ("NULL", "NULL", "MAX(v)"), "MAX(u.vmax)"),
    (
        "sqlite",
        "max",
        "tw_decimal_max(v)",
        "tw_decimal_max((CASE WHEN c THEN v END))",
        ("NULL", "NULL", "tw_decimal_max(v)"),
        "tw_decimal_max(u.vmax)",
    ),
    ("postgresql", "min", "MIN(v)", "MIN((CASE WHEN c THEN v END))", ("NULL", "MIN(v)", "NULL"), "MIN(u.vmin)"),
    (
        "sqlite",
        "min",
        "tw_decimal_min(v)",
        "tw_decimal_min((CASE WHEN c THEN v END))",
        ("NULL", "tw_decimal_min(v)", "NULL"),
        "tw_decimal_min(u.vmin)",
    ),
]


@pytest.mark.parametrize(("dialect", "name", "aggregate", "where", "columns", "rolled"), AGGREGATIONS)
def test_aggregation_sql(
    dialect: str, name: str, aggregate: str, where: str, columns: tuple[str, str, str], rolled: str
) -> None:
    d, agg = dialect_for(dialect), REGISTRY[name]
    assert agg.aggregate(d, "v") == aggregate
    assert agg.aggregate_where(d, "v", "c") == where
    assert agg.rollup_columns(d, "v") == columns
    assert agg.from_rollups(d) == rolled


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_unique_count_is_read_raw_and_latest_picks_a_row(dialect: str) -> None:
    d = dialect_for(dialect)
    unique, latest = REGISTRY["unique_count"], REGISTRY["latest"]
    assert unique.aggregate(d, "v") == "COUNT(DISTINCT v)"
    assert not unique.rolls_up
    with pytest.raises(NotImplementedError):
        unique.from_rollups(d)
    assert not latest.scalar
    with pytest.raises(NotImplementedError):
        latest.aggregate(d, "v")
    raw = latest.raw_select(d, value="v", groups=["g"], source="events e WHERE x")
    assert raw == (
        "SELECT idx, g0, ts, id, value FROM (SELECT bk.idx AS idx, g AS g0, e.timestamp AS ts, e.id AS id, "
        "v AS value, ROW_NUMBER() OVER (PARTITION BY bk.idx, g ORDER BY e.timestamp DESC, e.id DESC) AS rn "
        "FROM events e WHERE x) t WHERE rn = 1"
    )


def test_latest_from_rollups_per_dialect() -> None:
    latest = REGISTRY["latest"]
    assert latest.from_rollups(dialect_for("postgresql")) == (
        "MAX(u.la), (array_agg(u.li ORDER BY u.la DESC, u.li DESC))[1], "
        "(array_agg(u.lv ORDER BY u.la DESC, u.li DESC))[1]"
    )
    assert latest.from_rollups(dialect_for("sqlite")) == "MAX(u.la || ' ' || u.li), u.la, u.li, u.lv"


def test_raw_select_groups_by_window_and_groups() -> None:
    sql = REGISTRY["count"].raw_select(dialect_for("sqlite"), value="NULL", groups=["g1", "g2"], source="events e")
    assert sql == "SELECT bk.idx AS idx, g1 AS g0, g2 AS g1, COUNT(*) AS value FROM events e GROUP BY 1, 2, 3"


@pytest.mark.parametrize(
    ("name", "a", "b", "merged"),
    [
        ("count", Partial(Decimal(2)), Partial(Decimal(3)), Partial(Decimal(5))),
        ("sum", Partial(Decimal("1.5")), Partial(Decimal("-0.5")), Partial(Decimal("1.0"))),
        ("max", Partial(Decimal(2)), Partial(Decimal(3)), Partial(Decimal(3))),
        ("min", Partial(Decimal(2)), Partial(Decimal(3)), Partial(Decimal(2))),
        ("sum", Partial(None), Partial(Decimal(3)), Partial(Decimal(3))),
        ("max", Partial(Decimal(4)), Partial(None), Partial(Decimal(4))),
        (
            "latest",
            Partial(Decimal(1), ("2026-01-01 10:00:00.000000", "b")),
            Partial(Decimal(2), ("2026-01-01 10:00:00.000000", "a")),
            Partial(Decimal(1), ("2026-01-01 10:00:00.000000", "b")),
        ),
        (
            "latest",
            Partial(Decimal(1), ("2026-01-01 09:00:00.000000", "z")),
            Partial(Decimal(2), ("2026-01-01 10:00:00.000000", "a")),
            Partial(Decimal(2), ("2026-01-01 10:00:00.000000", "a")),
        ),
    ],
)
def test_partials_merge(name: str, a: Partial, b: Partial, merged: Partial) -> None:
    assert REGISTRY[name].merge(a, b) == merged


def test_distinct_values_do_not_merge() -> None:
    with pytest.raises(ValueError, match="cannot be merged"):
        REGISTRY["unique_count"].merge(Partial(Decimal(1)), Partial(Decimal(1)))


def test_what_each_aggregation_answers() -> None:
    assert {n: a.value_kind for n, a in REGISTRY.items()} == {
        "count": "none",
        "sum": "number",
        "max": "number",
        "min": "number",
        "latest": "number",
        "unique_count": "text",
    }
    assert {n for n, a in REGISTRY.items() if a.can_be_limited} == {"count", "sum"}
    assert {n for n, a in REGISTRY.items() if not a.rolls_up} == {"unique_count"}
    assert {n: a.empty for n, a in REGISTRY.items()} == {
        "count": 0,
        "sum": 0,
        "max": None,
        "min": None,
        "latest": None,
        "unique_count": 0,
    }


@pytest.mark.parametrize(
    ("dialect", "aggregation", "value"),
    [
        ("postgresql", "sum", PG_N),
        ("sqlite", "max", SQ_N_VALUE),
        ("postgresql", "count", "NULL"),
        ("sqlite", "unique_count", SQ_REGION.replace("region", "n")),
    ],
)
def test_value_expr(dialect: str, aggregation: str, value: str) -> None:
    meter = MeterDefinition("m", "call", aggregation, None if aggregation == "count" else "n")
    assert value_expr(dialect_for(dialect), meter) == value


def test_base_conditions_as_of_and_value() -> None:
    d = dialect_for("postgresql")
    meter = MeterDefinition("m", "call", "sum", "n", filters=({"property": "region", "op": "eq", "value": "eu"},))
    start, end, as_of = (datetime(2026, 1, m, tzinfo=UTC) for m in (1, 2, 3))
    where = base_conditions(d, meter, start=start, end=end, customer="acme", as_of=as_of)
    assert where == [
        "e.customer = :p4",
        "e.type = :p1",
        "e.timestamp >= :p2",
        "e.timestamp < :p3",
        "e.ingested_at <= :p5 AND (e.voided_at IS NULL OR e.voided_at > :p5)",
        f"({PG_REGION} = :p6 AND {PG_REGION_TYPE} = 'string')",
        f"{PG_N} IS NOT NULL",
    ]
    assert d.params == {
        "p1": "call",
        "p2": datetime(2026, 1, 1),
        "p3": datetime(2026, 1, 2),
        "p4": "acme",
        "p5": datetime(2026, 1, 3),
        "p6": "eu",
    }
    sqlite = dialect_for("sqlite")
    where = base_conditions(sqlite, meter, start=start, end=end, customer=None, as_of=None)
    assert where[:4] == ["e.type = :p1", "e.timestamp >= :p2", "e.timestamp < :p3", "e.voided_at IS NULL"]
    assert sqlite.params["p2"] == "2026-01-01 00:00:00.000000"
