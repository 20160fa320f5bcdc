"""The worker's fold: the pending events added to the meters' rollups, period sets and the
limits' counters, and the watermark moved past them, in one transaction.

An event is pending while its ``tx`` (the transaction that stored it) is not below the one-row
``rollup_watermark`` (``meter.sql.pending``). :func:`apply_pending` takes the oldest pending
events up to a cut that every batch below has finished (see its docstring for PostgreSQL's
case), adds them to every meter's hourly rollups (``meter.rollup``) and period sets
(``meter.distinct``), notes their customers in ``usage_changes`` (so alert evaluation reads only
the customers whose usage changed, ``alert.evaluate``), hands the range to the limits' fold
(``limit.keeper``) and moves the watermark, all in the caller's transaction. A query's snapshot
therefore sees the rollups and the watermark together: every event counts exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from tollway.db import is_postgres
from tollway.meter import distinct
from tollway.meter.aggregations import REGISTRY
from tollway.meter.definition import MeterDefinition
from tollway.meter.rollup import (
    COLUMNS,
    EVERY_CUSTOMER,
    ROLLUP_LOCK,
    TYPED_COLUMNS,
    as_partials,
    has_rollup,
    load_meters,
    lock_shared,
    merge_rows_sql,
    rows_select_sql,
    upsert_sql,
)
from tollway.meter.sql import Dialect, dialect_for, meter_conditions, reads_value, value_expr

log = logging.getLogger("tollway.meter")


@dataclass(frozen=True)
class FoldedBatch:
    """The pending events one :func:`apply_pending` folds: those with ``tx`` in ``[lo, hi)``,
    and the customers they belong to."""

    lo: int
    hi: int
    customers: frozenset[str]

    def events(self) -> str:
        """A subquery of these events' rows (for ``FROM``)."""
        return events_in(self.lo, self.hi)


def events_in(lo: int, hi: int) -> str:
    """A subquery (for ``FROM``) of the events with ``tx`` in ``[lo, hi)``."""
    return f"(SELECT * FROM events WHERE tx >= {int(lo)} AND tx < {int(hi)})"


class PendingFold(Protocol):
    """Something else kept from the pending events, folded in the same transaction that rolls
    them up (the limits' counters, ``limit.keeper``): until then it reads them as pending. It
    gets the batch's customers first, so it reads the events only when it keeps something of
    those customers."""

    def __call__(self, conn: Connection | Session, batch: FoldedBatch, /) -> None: ...


def fold_ctes(d: Dialect, meters: Sequence[MeterDefinition], source: str) -> list[str]:
    """PostgreSQL: the CTEs (``name AS (…)``, in order) adding the events of ``source`` (a CTE of
    ``events`` rows) to the meters' rollups and period sets, and noting their customers in
    ``usage_changes``.

    Each event is read once: ``fold`` projects each row of ``source`` to what the meters read
    from it (per meter ``i``: ``c{i}``, whether it counts for the meter, ``v{i}`` its value,
    ``g{i}_{k}`` the text of its ``k``-th ``group_by`` property), a narrow row. Per meter,
    ``p{i}`` aggregates those per customer, hour and group (unordered); the per-customer
    rollup rows are upserted from those partials (``r{i}``, in key order), and the rows of every
    customer merge the partials (``a{i}``, the aggregation's ``merge_rollups_select``: counts
    and sums add up, a min of mins, a max of maxes, the latest by ``(latest_at, latest_id)``),
    not the events again. ``unique_count`` meters fold the projected values into their period
    sets (``distinct.fold_ctes``), and the customers noted as changed are those of the
    projection."""
    cols = ["e.customer", "e.timestamp", "e.id", f"{d.hour_of('e.timestamp')} AS hour"]
    for i, m in enumerate(meters):
        cols.append(f"({' AND '.join(['e.voided_at IS NULL', *meter_conditions(d, m)])}) AS c{i}")
        if reads_value(m):
            cols.append(f"{value_expr(d, m)} AS v{i}")
        if has_rollup(m):
            cols += [f"{d.text_value(p)} AS g{i}_{k}" for k, p in enumerate(m.group_by)]
    ctes = [f"fold AS MATERIALIZED (SELECT {', '.join(cols)} FROM {source} e)"]
    for i, m in enumerate(meters):  # the same order in every worker: rows are locked in one order
        value = f"e.v{i}" if reads_value(m) else "NULL"
        cond = f"e.c{i} AND e.v{i} IS NOT NULL" if reads_value(m) else f"e.c{i}"
        if has_rollup(m):
            group_values = [f"e.g{i}_{k}" for k in range(len(m.group_by))]
            partials = rows_select_sql(
                d,
                m,
                "fold",
                hour="e.hour",
                group_values=group_values,
                value=value,
                cond=cond,
                customer="e.customer",
                ordered=False,
            )
            ctes.append(f"p{i} AS MATERIALIZED (SELECT {TYPED_COLUMNS} FROM ({partials}) x ({COLUMNS}))")
            in_key_order = f"SELECT {COLUMNS} FROM p{i} ORDER BY customer, bucket_start, group_key"
            ctes.append(f"r{i} AS ({merge_rows_sql(d, in_key_order)})")
            merged = REGISTRY[m.aggregation].merge_rollups_select(
                d, key=d.bind(m.key), customer=d.bind(EVERY_CUSTOMER), source=as_partials(f"p{i}")
            )
            ctes.append(f"a{i} AS ({merge_rows_sql(d, f'{merged} ORDER BY 3, 4')})")
        if distinct.keeps_sets(m):
            ctes += distinct.fold_ctes(d, m, "fold", f"s{i}", value=value, cond=cond)
    ctes.append(f"changed AS ({note_changes_sql(d.name, 'fold')})")
    return ctes


def apply_pending(conn: Connection | Session, limit: int = 20_000, fold: PendingFold | None = None) -> int:
    """Add the oldest pending events (``meter.sql.pending``) to every meter's rollups and period
    sets and move the watermark past them, in the caller's transaction (READ COMMITTED, as every
    transaction here); ``fold`` gets the ids of the events applied, in the same transaction (the
    worker passes the limits' fold: whatever else applies pending events without it leaves the
    limit counters short until they are seeded again). Returns how many were applied: at least
    ``limit`` while more are pending, unless only batches still being stored are left.

    The events of one storing transaction share their ``tx``, so they are applied together: up to
    ``limit`` events, plus the rest of the last batch reached. On PostgreSQL folds are serialised
    on the watermark row: one that finds it locked by another returns 0 at once (SQLite has one
    writer at a time anyway).

    PostgreSQL: every event with ``tx`` below the cut must be committed before it is read. The
    cut is the fold's own transaction id (assigned by locking the watermark row): every id below
    it was assigned already, so no batch stored later gets one. (A snapshot's ``xmax`` would do
    too, but it is only past the last transaction to end: a batch in flight would mostly be left
    for the next fold.) A batch takes the shared lock before its id is assigned and holds it until
    it commits; the fold lists the transactions holding it that have an id below the cut and waits
    until each has ended (``pg_xact_status``, polled every millisecond), and its statements, each
    with a snapshot of its own, then see them. Taking the lock exclusively would wait for them
    too, but would also queue every batch arriving meanwhile behind it. The snapshot's ``xmin``
    would need no wait, but it is the oldest transaction of the whole cluster: a long one in
    another database would hold the fold back."""
    if not is_postgres(conn):
        return _apply_pending_sqlite(conn, limit, fold)
    head = conn.execute(
        text(
            "SELECT next_tx, tx_base, CAST(CAST(pg_current_xact_id() AS text) AS bigint) "
            "FROM rollup_watermark FOR UPDATE SKIP LOCKED"
        )
    ).first()
    if head is None:  # another fold is running
        return 0
    lo, base, own = int(head[0]), int(head[1]), int(head[2])
    cut = own + base  # as the store makes tx
    if cut < lo:
        log.error(
            "transaction ids are below the rollup watermark (the database was restored into another "
            "cluster?): events stored now are not counted until `tollway migrate` (or a restart of "
            "tollway serve/worker) rebases them"
        )
        return 0
    _wait_for_batches_below(conn, own)
    lock_shared(conn)
    hi = _fold_bound(conn, lo, cut, limit)
    if hi is None:
        return 0
    meters = load_meters(conn)
    d = dialect_for("postgresql")
    ctes = [f"src AS {events_in(lo, hi)}", f"mark AS (UPDATE rollup_watermark SET next_tx = {d.bind(hi)})"]
    ctes += fold_ctes(d, meters, "src")
    # Counted from the projection, which reads each event once (``src`` itself is not materialized).
    customers_sql = ", CAST(json_agg(DISTINCT customer) AS text)" if fold is not None else ""
    row = conn.execute(text(f"WITH {', '.join(ctes)} SELECT count(*){customers_sql} FROM fold"), d.params).one()
    if fold is not None and row[0]:
        fold(conn, FoldedBatch(lo, hi, frozenset(orjson.loads(row[1]))))
    return int(row[0])


_BATCHES_IN_FLIGHT = (
    # The transactions of this database that hold the rollup lock shared (batches being stored:
    # the lock is taken before their id exists) and have an id: pg_stat_activity's backend_xid
    # is read from the process array, where an id is published as it is assigned.
    "SELECT CAST(a.backend_xid AS text) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = 0 AND l.objid = :k AND l.objsubid = 1 AND l.mode = 'ShareLock' AND l.granted "
    "AND a.backend_xid IS NOT NULL AND l.pid <> pg_backend_pid()"
)


def _wait_for_batches_below(conn: Connection | Session, cut: int) -> None:
    """Wait until every batch with a transaction id below ``cut`` (a full 64-bit id of this
    transaction) has committed or rolled back; batches that get their id later, or start later,
    are not waited for and are not held up (a lock taken exclusively would queue them)."""
    conn.execute(text("SELECT pg_stat_clear_snapshot()"))  # pg_stat_activity as of now, not cached
    low = cut & 0xFFFFFFFF
    below = []
    for (xid,) in conn.execute(text(_BATCHES_IN_FLIGHT), {"k": ROLLUP_LOCK}):
        behind = (low - int(xid)) % 2**32  # how far below the cut, modulo the 32-bit wrap
        if 0 < behind < 2**31:
            below.append(str(cut - behind))
    while below:
        below = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT x FROM unnest(CAST(:xs AS text[])) x "
                    "WHERE pg_xact_status(CAST(x AS xid8)) = 'in progress'"
                ),
                {"xs": below},
            )
        ]
        if below:
            time.sleep(0.001)


def _fold_bound(conn: Connection | Session, lo: int, cut: int | None, limit: int) -> int | None:
    """The end (exclusive) of the range of ``tx`` to fold from ``lo``, below ``cut`` (None: no
    cut): past the ``limit``-th pending event's whole transaction, or the cut. None when nothing
    is pending below the cut."""
    below = "" if cut is None else " AND tx < :cut"
    first, last, top = conn.execute(
        text(
            f"SELECT (SELECT min(tx) FROM events WHERE tx >= :lo{below}), "
            f"(SELECT tx FROM events WHERE tx >= :lo{below} ORDER BY tx LIMIT 1 OFFSET :skip), "
            f"(SELECT max(tx) FROM events WHERE tx >= :lo{below})"
        ),
        {"lo": lo, "cut": cut, "skip": max(limit, 1) - 1},
    ).one()
    if first is None:
        return None
    if last is not None:
        return int(last) + 1
    return int(top) + 1 if cut is None else cut


def _apply_pending_sqlite(conn: Connection | Session, limit: int, fold: PendingFold | None) -> int:
    # One writer at a time (BEGIN IMMEDIATE): every stored event is committed, no cut to wait for.
    lo = int(conn.execute(text("SELECT next_tx FROM rollup_watermark")).scalar_one())
    hi = _fold_bound(conn, lo, None, limit)
    if hi is None:
        return 0
    lock_shared(conn)
    meters = load_meters(conn)
    span = events_in(lo, hi)
    for meter in meters:
        kinds = (["sets"] if distinct.keeps_sets(meter) else []) + (["rows", "every"] if has_rollup(meter) else [])
        for kind in kinds:
            d = dialect_for("sqlite")
            if kind == "sets":
                statements = distinct.fold_statements(d, meter, span)
            else:
                statements = [upsert_sql(d, meter, span, every_customer=kind == "every")]
            for sql in statements:
                conn.execute(text(sql), d.params)
    conn.execute(text(note_changes_sql("sqlite", span)))
    conn.execute(text("UPDATE rollup_watermark SET next_tx = :hi"), {"hi": hi})
    rows = conn.execute(text(f"SELECT count(*), json_group_array(DISTINCT customer) FROM {span}")).one()
    if fold is not None and rows[0]:
        fold(conn, FoldedBatch(lo, hi, frozenset(orjson.loads(rows[1]))))
    return int(rows[0])



def note_changes_sql(dialect: str, source: str) -> str:
    """``INSERT`` into ``usage_changes`` of the distinct customers of ``source`` (rows with a
    ``customer`` column), ignoring those already noted: the customers whose usage changed since
    alerts were last evaluated (``alert.evaluate`` reads and clears them)."""
    if dialect == "postgresql":
        return f"INSERT INTO usage_changes (customer) SELECT DISTINCT e.customer FROM {source} e ON CONFLICT DO NOTHING"
    return f"INSERT OR IGNORE INTO usage_changes (customer) SELECT DISTINCT e.customer FROM {source} e"


def rebase_tx(conn: Connection | Session) -> bool:
    """PostgreSQL: make sure the events stored from now on get a ``tx`` above every stored one,
    as the fold needs (``models.RollupWatermark``). Transaction ids only grow within a cluster,
    but a database restored into another cluster (``pg_dump``/``pg_restore``, logical
    replication) finds them started again from the bottom: new events would get a ``tx`` below
    the watermark and never count. Then ``tx_base`` is raised so that this transaction's id maps
    just past the highest stored ``tx`` and the watermark; returns whether it was. Runs at every
    start of ``tollway serve``, ``worker`` and ``migrate``, in the caller's transaction, before
    anything is stored: a no-op (one read) unless the ids went backwards."""
    if not is_postgres(conn):
        return False  # SQLite's tx is one more than the highest stored: nothing to rebase
    base, own, top, next_tx = conn.execute(
        text(
            "SELECT tx_base, CAST(CAST(pg_current_xact_id() AS text) AS bigint), "
            "(SELECT max(tx) FROM events), next_tx FROM rollup_watermark FOR UPDATE"
        )
    ).one()
    floor = max(int(next_tx), int(top) + 1 if top is not None else 0)
    if int(own) + int(base) >= floor:
        return False
    conn.execute(text("UPDATE rollup_watermark SET tx_base = :b"), {"b": floor - int(own)})
    log.warning("transaction ids restarted below the stored events' (a restore into another cluster?): rebased")
    return True

