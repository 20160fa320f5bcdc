"""One heavy customer's invoice: the time ``finalize_next`` takes to compute and write it.

    .venv/bin/python bench/billing.py --customers 10 --events 10000000 --keep --database tw_heavy
    .venv/bin/python bench/finalize_one.py --database tw_heavy            # 1,000,000 events per customer

On a database kept by ``bench/billing.py`` (its subscriptions ``sub-00000``…, January due), each
call finalizes one subscription's January invoice (every event of its month counted as of now)
in a transaction that is rolled back (the kept database's invoices are deleted first, as
``bench/billing.py --reuse`` does): p50 over ``--calls`` calls, the
subscriptions taken in turn. Run it with ``PYTHONPATH`` at an export of other code to compare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from _common import pg_url
from billing import reset_billing

FEB = datetime(2026, 2, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="a database kept by bench/billing.py --keep")
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()

    from tollway.db import database_now, make_engine, make_sessionmaker
    from tollway.invoice.finalize import finalize_next

    reset_billing(pg_url(args.database))
    engine = make_engine(pg_url(args.database))
    factory = make_sessionmaker(engine)
    with factory() as session:
        subs = [r[0] for r in session.execute(text("SELECT id FROM subscriptions ORDER BY id"))]
    times = []
    for i in range(args.calls):
        sub = subs[i % len(subs)]
        with factory() as session:
            moment = database_now(session)
            t0 = time.perf_counter()
            invoice, _ = finalize_next(session, sub, until=FEB, as_of=moment, now=moment)
            times.append(time.perf_counter() - t0)
            assert invoice is not None, sub
            session.rollback()
    print(
        f"finalize one invoice ({len(subs)} subscriptions, taken in turn), s: "
        f"p50 {statistics.median(times):.3f}  min {min(times):.3f}  max {max(times):.3f}  (n={len(times)})"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
