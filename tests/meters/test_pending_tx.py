"""Pending events by transaction (``meter.sql.pending``, ``fold.apply_pending``): a batch still
being stored while the worker folds is folded exactly once, by that fold (which waits for it) or a
later one (which it does not wait for), and is counted exactly once by queries meanwhile; a batch
that starts while a fold waits is not held up; a fold takes whole batches; a transaction in another
database does not hold the fold back."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from sqlalchemy import text

from tests.conftest import PG_ADMIN_URL
from tollway.db import session_scope
from tollway.event.ingest import IncomingEvent
from tollway.event.store import SqlEventStore
from tollway.meter import fold, rollup
from tollway.meter.definition import MeterDefinition
from tollway.meter.query import query_usage
from tollway.meter.sql import PENDING_COUNT_SQL
from tollway.models import Meter

T = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
DAY = (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))


def _events(prefix: str, n: int, customer: str = "acme") -> list[dict]:
    ts = T.isoformat()
    return [{"id": f"{prefix}{i}", "customer": customer, "type": "api_call", "timestamp": ts} for i in range(n)]


def _setup(api) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/meters", json={"key": "calls", "event_type": "api_call", "aggregation": "count"})
    assert r.status_code == 201, r.text


def _usage(session_factory, customer: str | None = "acme") -> int:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        meter = MeterDefinition.from_row(s.get(Meter, "calls"))
        rows = query_usage(s, meter, start=DAY[0], end=DAY[1], customer=customer)
        return int(rows[0].value) if rows and rows[0].value is not None else 0


def _rolled(session_factory) -> int:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        n = s.execute(
            text("SELECT coalesce(sum(event_count), 0) FROM meter_rollups WHERE meter_key = 'calls' AND customer <> ''")
        ).scalar_one()
        return int(n)


def _fold(session_factory, limit: int = 20_000) -> int:  # type: ignore[no-untyped-def]
    with session_scope(session_factory) as s:
        return fold.apply_pending(s, limit=limit)


class _InFlight:
    """A batch stored as the event store does (same statements), the transaction left open."""

    def __init__(self, db_url: str, engine) -> None:  # type: ignore[no-untyped-def]
        self.conn = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
        self.sql = SqlEventStore(engine)._insert_sql

    def lock(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.execute(rollup.LOCK_SHARED_SQL, {"k": rollup.ROLLUP_LOCK})

    def insert(self, events: list[dict]) -> None:
        payload = orjson.dumps(
            [{"id": e["id"], "c": e["customer"], "t": e["type"], "ts": T, "p": {}} for e in events]
        ).decode()
        self.conn.execute(self.sql, {"batch": payload, "folded": sorted(rollup.FOLDED_AGGREGATIONS)})

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def _fold_in_thread(session_factory) -> tuple[threading.Thread, list[int]]:  # type: ignore[no-untyped-def]
    out: list[int] = []
    thread = threading.Thread(target=lambda: out.append(_fold(session_factory)))
    thread.start()
    return thread, out


def test_a_batch_stored_before_the_cut_is_waited_for_and_folded_once(api, session_factory, db_url, backend) -> None:  # type: ignore[no-untyped-def]
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: no batch is in flight during a fold")
    _setup(api)
    assert api.post("/v1/events", json={"events": _events("a", 3)}).status_code == 202
    batch = _InFlight(db_url, api.app.state.engine)
    batch.lock()
    batch.insert(_events("b", 2))  # its transaction id is assigned: below the fold's cut
    thread, folded = _fold_in_thread(session_factory)
    time.sleep(0.5)
    assert thread.is_alive(), "the fold did not wait for the batch in flight below its cut"
    assert _usage(session_factory) == 3  # the open batch is not visible yet
    batch.commit()
    thread.join(10)
    assert folded == [5]
    assert _rolled(session_factory) == 5
    assert _usage(session_factory) == 5
    assert _fold(session_factory) == 0


def test_a_batch_whose_transaction_starts_after_the_cut_is_folded_by_the_next_fold(  # type: ignore[no-untyped-def]
    api, session_factory, db_url, backend
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: no batch is in flight during a fold")
    _setup(api)
    assert api.post("/v1/events", json={"events": _events("a", 3)}).status_code == 202
    batch = _InFlight(db_url, api.app.state.engine)
    batch.lock()  # holds the shared lock, no transaction id yet: it will get one past the cut
    assert _fold(session_factory) == 3  # not held up by the batch
    batch.insert(_events("b", 2))
    batch.commit()
    assert _rolled(session_factory) == 3
    with session_factory() as s:
        assert s.execute(text(PENDING_COUNT_SQL)).scalar_one() == 2
    assert _usage(session_factory) == 5 and _usage(session_factory, None) == 5  # each event once
    assert _fold(session_factory) == 2
    assert _rolled(session_factory) == 5
    assert _usage(session_factory) == 5 and _usage(session_factory, None) == 5
    assert _fold(session_factory) == 0


def test_a_fold_takes_whole_batches(api, session_factory) -> None:  # type: ignore[no-untyped-def]
    _setup(api)
    for prefix in ("a", "b", "c"):
        assert api.post("/v1/events", json={"events": _events(prefix, 3)}).status_code == 202
    assert _fold(session_factory, limit=2) == 3  # the limit falls inside the first batch: all of it
    assert _usage(session_factory) == 9
    assert _fold(session_factory, limit=4) == 6  # the fourth event is in the third batch
    assert _rolled(session_factory) == 9
    assert _fold(session_factory, limit=4) == 0
    assert _usage(session_factory) == 9


def test_a_transaction_in_another_database_does_not_hold_the_fold_back(api, session_factory, backend) -> None:  # type: ignore[no-untyped-def]
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    _setup(api)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_current_xact_id()")  # an open transaction with an id, older than the batch
        assert api.post("/v1/events", json={"events": _events("a", 3)}).status_code == 202
        assert _fold(session_factory) == 3
        other.execute("ROLLBACK")
    assert _rolled(session_factory) == 3


def test_a_batch_that_starts_while_a_fold_waits_is_not_held_up(api, session_factory, db_url, backend) -> None:  # type: ignore[no-untyped-def]
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: no batch is in flight during a fold")
    _setup(api)
    slow = _InFlight(db_url, api.app.state.engine)
    slow.lock()
    slow.insert(_events("a", 2))  # below the fold's cut: the fold waits for it
    thread, folded = _fold_in_thread(session_factory)
    time.sleep(0.3)
    assert thread.is_alive()
    store = SqlEventStore(api.app.state.engine)
    batch = [IncomingEvent(f"b{i}", "acme", "api_call", T, {}) for i in range(3)]
    assert store.store(batch, T) == 3  # neither waits for the fold nor is lost
    slow.commit()
    thread.join(10)
    assert folded == [2]
    assert _usage(session_factory) == 5
    assert _fold(session_factory) == 3
    assert _rolled(session_factory) == 5


def test_a_database_restored_into_another_cluster_keeps_counting_new_events(api, session_factory, backend) -> None:  # type: ignore[no-untyped-def]
    """A restore into another cluster starts transaction ids from the bottom again, far below the
    stored events' ``tx`` and the watermark (simulated here by moving both up by a billion): the
    events stored afterwards must still be pending, then folded, never silently below the
    watermark. ``rebase_tx`` (run by every start) raises the base; before it, the fold refuses."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL only: SQLite's tx is one more than the highest stored")
    _setup(api)
    assert api.post("/v1/events", json={"events": _events("old", 4)}).status_code == 202
    assert _fold(session_factory) == 4
    assert api.post("/v1/events", json={"events": _events("late", 2)}).status_code == 202  # pending at the "dump"
    jump = 1_000_000_000
    with session_scope(session_factory) as s:
        s.execute(text("UPDATE events SET tx = tx + :j WHERE tx IS NOT NULL"), {"j": jump})
        s.execute(text("UPDATE rollup_watermark SET next_tx = next_tx + :j"), {"j": jump})
    assert _usage(session_factory) == 6
    assert _fold(session_factory) == 0  # its own id is below the watermark: it refuses, moves nothing
    with session_scope(session_factory) as s:
        assert fold.rebase_tx(s) is True
    with session_scope(session_factory) as s:
        assert fold.rebase_tx(s) is False  # once is enough
    assert api.post("/v1/events", json={"events": _events("new", 3)}).status_code == 202
    assert _usage(session_factory) == 9  # the new events are pending, counted raw
    assert _fold(session_factory) == 5  # the two pending at the "dump" and the three new ones
    assert _rolled(session_factory) == 9
    assert _usage(session_factory) == 9
