"""Pricing-simulator benchmark against PostgreSQL: a draft plan priced on every customer's January.

    .venv/bin/python bench/simulator.py                         # 1,000 customers, 1,000,000 events
    .venv/bin/python bench/simulator.py --customers 200 --events 100000   # quicker

Setup: the billing benchmark's data set (``bench/billing.py``: three meters, one published plan,
``--customers`` customers, ``--events`` events over January 2026, rollups rebuilt) and January
billed. Timed, ``--runs`` times each, medians:
(a) the billing run of January (the baseline: the same customers priced once by the same
    engine, but also writing invoices) — measured once, before the simulations;
(b) ``simulate_plan`` of a draft plan (different prices on the same meters) over January;
(c) the same through ``POST /v1/plans/{code}/simulate`` (JSON of every row included).
Checked: the simulation of the published plan reproduces every invoice's subtotal exactly.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import drop_database, fresh_database
from billing import FEB, JAN, PLAN, _run, setup

DB_NAME = "tw_bench_simulator"
DRAFT = {
    **PLAN,
    "code": "candidate",
    "name": "Candidate",
    "fees": {"recurring": {"amount": "29.00", "in_advance": True, "prorate": True}},
    "charges": [
        {"code": "calls", "meter": "calls", "model": "graduated",
         "tiers": [{"up_to": 500, "unit_price": "0"}, {"up_to": None, "unit_price": "0.012"}]},
        {"code": "bytes", "meter": "bytes", "model": "volume",
         "tiers": [{"up_to": 5000000, "unit_price": "0.0000012"}, {"up_to": None, "unit_price": "0.0000008"}]},
        {"code": "errors", "meter": "errors", "model": "flat", "unit_price": "0.10"},
    ],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from tollway.app import create_app
    from tollway.auth.keys import create_key
    from tollway.catalog.schemas import PlanCreate
    from tollway.catalog.service import create_plan, get_plan
    from tollway.config import Settings
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.invoice.simulate import simulate_plan

    url = fresh_database(DB_NAME)
    try:
        print(f"setup: {args.customers:,} customers, {args.events:,} events, 3 meters", flush=True)
        setup(url, args.customers, args.events, args.seed)
        t0 = time.perf_counter()
        created = _run(url)
        billing = time.perf_counter() - t0
        assert created == args.customers
        print(f"(a) billing run of January (baseline): {created:,} invoices in {billing:.2f} s", flush=True)

        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with session_scope(factory) as session:
            create_plan(session, PlanCreate.model_validate(DRAFT))
        with factory() as session:
            same = simulate_plan(session, get_plan(session, "bench"), start=JAN, end=FEB)
        assert len(same.rows) == args.customers and all(r.difference == 0 for r in same.rows), "not reproduced"
        print(f"checked: the published plan reproduces all {len(same.rows):,} invoice subtotals exactly", flush=True)

        times = []
        for _ in range(args.runs):
            with factory() as session:
                t0 = time.perf_counter()
                sim = simulate_plan(session, get_plan(session, "candidate"), start=JAN, end=FEB)
                times.append(time.perf_counter() - t0)
        engine.dispose()
        sim_s = statistics.median(times)
        print(f"(b) simulate_plan, {len(sim.rows):,} customers: median {sim_s:.2f} s over {args.runs} runs "
              f"({sim_s / billing:.2f}x the billing run); invoiced {sim.invoiced} -> simulated {sim.simulated}",
              flush=True)  # fmt: skip

        app = create_app(Settings(database_url=url, run_worker_in_serve=False))
        with session_scope(app.state.sessionmaker) as session:
            _, secret = create_key(session, scope="admin", name="bench")
        http_times = []
        with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
            for _ in range(args.runs):
                t0 = time.perf_counter()
                r = client.post(
                    "/v1/plans/candidate/simulate",
                    json={"from": JAN.isoformat(), "to": datetime(2026, 2, 1, tzinfo=UTC).isoformat()},
                )
                http_times.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        app.state.engine.dispose()
        http_s = statistics.median(http_times)
        print(f"(c) POST /v1/plans/candidate/simulate: median {http_s:.2f} s (target < 5 s for 1,000 customers)")
    finally:
        drop_database(DB_NAME)


if __name__ == "__main__":
    main()
