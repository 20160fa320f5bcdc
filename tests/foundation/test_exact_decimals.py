"""Quantities and meter values come back exactly as they went in, on both databases
(``db.ExactDecimal``; migration 0024): the migrated schema is what the models declare, the
migration keeps every stored value, and a billing run does not correct a quantity it cannot keep."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import tollway.models  # noqa: F401  (every table on Base.metadata)
from tests.conftest import start_server, stop_server
from tests.factories import (
    calls,
    create_customer,
    create_meter,
    create_plan,
    invoices_of,
    run_billing,
    send_events,
    subscribe,
)
from tollway.db import Base, make_engine
from tollway.meter.fold import apply_pending
from tollway.meter.sql import PENDING_COUNT_SQL
from tollway.migrations.runner import alembic_config

# A float's artefact (0.1 + 0.2) and the longest fraction a float keeps: 17 significant digits.
LATE = 0.30000000000000004
LONG = 0.12345678901234568


def test_the_migrated_schema_is_what_the_models_declare(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def _bill_fractional_usage(api) -> None:  # type: ignore[no-untyped-def]
    create_meter(api, key="gpu", event_type="job", aggregation="sum", value_property="seconds")
    create_meter(api, key="peak", event_type="job", aggregation="max", value_property="seconds")
    charges = [{"code": "gpu", "meter": "gpu", "model": "flat", "unit_price": "0.01"}]
    create_plan(api, code="p", charges=charges, publish=True)
    create_customer(api, id="c", low_balance_threshold=str(LONG))
    subscribe(api, id="s1", customer="c", plan="p", start="2026-01-01T00:00:00Z")
    send_events(api, calls("c", 3, day="2026-01-10", type="job", seconds=0.1))
    assert run_billing(api, "2026-02-01T00:00:00Z")["invoices_created"] == 1
    send_events(api, calls("c", 1, day="2026-01-11", type="job", prefix="late", seconds=LATE))


def test_a_late_quantity_with_many_decimals_is_corrected_once(api) -> None:  # type: ignore[no-untyped-def]
    """Before: the correction's quantity came back rounded (12 decimals on PostgreSQL, a float on
    SQLite), differed from the one recomputed, and every run added another adjustment line."""
    _bill_fractional_usage(api)
    for month in (3, 4, 5, 6):
        run_billing(api, f"2026-0{month}-01T00:00:00Z")
    adjustments = [line for inv in invoices_of(api, "c") for line in inv["lines"] if line["kind"] == "adjustment"]
    assert [(a["quantity"], a["amount"]) for a in adjustments] == [(str(Decimal(str(LATE))), "0.01")]
    assert api.get("/v1/customers/c").json()["low_balance_threshold"] == str(Decimal(str(LONG)))


def _stored(engine) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return {
            "quantity": conn.scalar(text("SELECT max(quantity) FROM invoice_lines WHERE kind = 'usage'")),
            "threshold": conn.scalar(text("SELECT low_balance_threshold FROM customers WHERE id = 'c'")),
            "peak": conn.scalar(text("SELECT max(value_max) FROM meter_rollups WHERE meter_key = 'peak'")),
        }


def test_the_migration_keeps_every_stored_value(api, backend: str, db_url: str) -> None:  # type: ignore[no-untyped-def]
    _bill_fractional_usage(api)
    api.post("/v1/billing/run", json={"until": "2026-03-01T00:00:00Z"})  # the late quantity on a line
    engine = make_engine(db_url)
    cfg = alembic_config()
    try:
        with engine.begin() as conn:  # the worker's fold: the max meter's rollups
            while apply_pending(conn):
                pass
        with engine.begin() as conn:  # as before 0024
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0023")
        before = _stored(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        after = _stored(engine)
        if backend == "sqlite":  # floats before, the exact text of the same floats after
            assert [type(v) for v in before.values()] == [float, float, float]
            assert after == {k: str(Decimal(repr(v))) for k, v in before.items()}
            assert after["threshold"] == str(Decimal(str(LONG)))
        else:  # numeric(38, 12) before: rounded by the downgrade, kept as it is by the upgrade
            assert after == before
            assert before["quantity"] == Decimal("0.300000000000")
            with engine.connect() as conn:
                kinds = conn.execute(
                    text(
                        "SELECT table_name, column_name, numeric_precision FROM information_schema.columns "
                        "WHERE column_name IN ('quantity', 'low_balance_threshold', 'value_max')"
                    )
                ).all()
            assert sorted(kinds) == [
                ("customers", "low_balance_threshold", None),
                ("invoice_lines", "quantity", None),
                ("meter_rollups", "value_max", None),
            ]
    finally:
        engine.dispose()
    [late] = [line for inv in invoices_of(api, "c") for line in inv["lines"] if line["kind"] == "adjustment"]
    # Served through the models: on PostgreSQL as the downgrade rounded it.
    assert late["quantity"] == (str(Decimal(str(LATE))) if backend == "sqlite" else "0.3")


def test_exact_values_and_one_correction_through_a_real_server(db_url: str) -> None:
    """Through `tollway serve` with its worker folding: a sum and a max of integers past 2**63
    read back exactly from the rollups, and a late fractional quantity corrected once."""
    server = start_server(db_url, extra_env={"TOLLWAY_ROLLUP_INTERVAL_SECONDS": "1"})
    try:
        key = server.key("admin")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
            _bill_fractional_usage(api)
            # Not billed (an amount that large overflows the invoice's minor units): metered only.
            create_meter(api, key="huge_sum", event_type="huge", aggregation="sum", value_property="v")
            create_meter(api, key="huge_max", event_type="huge", aggregation="max", value_property="v")
            big = [18446744073709551615, 9223372036854775808]
            send_events(api, calls("c", 2, day="2026-02-03", type="huge", prefix="big", v=big[0]))
            send_events(api, calls("c", 1, day="2026-02-04", type="huge", prefix="big2", v=big[1]))
            engine = make_engine(db_url)
            try:
                deadline = time.monotonic() + 30
                while _pending(engine) and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert _pending(engine) == 0  # what follows is read from the rollups
            finally:
                engine.dispose()
            window = {"customer": "c", "from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}
            usage = {
                m: api.get(f"/v1/meters/{m}/usage", params=window).json()["data"] for m in ("huge_sum", "huge_max")
            }
            assert [u["value"] for u in usage["huge_sum"]] == [str(2 * big[0] + big[1])]
            assert [u["value"] for u in usage["huge_max"]] == [str(big[0])]
            for month in (3, 4):
                run_billing(api, f"2026-0{month}-01T00:00:00Z")
            adjustments = [
                line for inv in invoices_of(api, "c") for line in inv["lines"] if line["kind"] == "adjustment"
            ]
            assert [a["quantity"] for a in adjustments] == [str(Decimal(str(LATE)))]
    finally:
        stop_server(server)


def _pending(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text(PENDING_COUNT_SQL)).scalar_one())
