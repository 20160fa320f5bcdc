"""The concurrent-billing harness: whole billing runs started at the same moment in threads,
each with its own session and connection (on PostgreSQL this exercises the row locks)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tollway.invoice.finalize import run_billing


def billing_runs_at_once(
    factory: sessionmaker[Session], *, until: datetime, runs: int = 2, **options: Any
) -> list[int]:
    """Start ``runs`` billing runs up to ``until`` at once (behind a barrier) and wait for them;
    re-raise what any of them raised. Returns how many invoices each run created. ``options``
    go to ``run_billing`` (e.g. ``chunk``)."""
    barrier = threading.Barrier(runs)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(len(run_billing(factory, until=until, **options).created))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a billing run did not finish in 120 s"
    assert not errors, errors
    return results
