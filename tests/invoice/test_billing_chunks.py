"""The billing run's chunks (invoice/batch.py): many invoices per transaction with batched reads
bill exactly what one invoice per transaction (``finalize_next``) bills, exactly once and with
gapless numbers under concurrent runs, and a chunk that fails loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.concurrency import billing_runs_at_once
from tests.credits.conftest import grant
from tests.factories import create_customer, create_meter, create_plan, send_events, subscribe
from tollway.db import database_now
from tollway.invoice import finalize
from tollway.invoice.finalize import finalize_next, run_billing
from tollway.models import Invoice, InvoiceLine, InvoiceSequence, OutboxMessage

PER_INVOICE = ("adjusts_invoice", "adjusts_invoice_id", "invoice_as_of")
"""Adjustment details naming the twin's own invoice."""
FEB, MAR = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
TOTALS_PLAN = [
    {"code": "calls", "meter": "calls", "model": "package", "package_size": 10, "package_price": "1.00",
     "free_units": 5},
    {"code": "bytes", "meter": "bytes", "model": "graduated",
     "tiers": [{"up_to": 1000, "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.005"}]},
    {"code": "errors", "meter": "errors", "model": "flat", "unit_price": "0.25"},
]  # fmt: skip
REGION_PLAN = [
    {"code": "calls", "meter": "calls", "model": "flat", "unit_price": "0.10", "dimension": "region",
     "dimension_prices": {"EMEA": {"unit_price": "0.20"}}},
    {"code": "bytes", "meter": "bytes", "model": "flat", "unit_price": "0.001"},
]  # fmt: skip
CUSTOMERS = {  # customer -> (plan, number of events, tax rate, credit)
    "k1": ("totals", 40, "10", None),
    "k2": ("totals", 0, "0", None),
    "k3": ("trial", 25, "21", None),
    "k4": ("regions", 30, "0", None),
    "k5": ("totals", 17, "10", "3.00"),
    "k6": ("regions", 9, "7.5", "500.00"),
    "k7": ("totals", 60, "0", None),
}


def _events(customer: str, n: int, *, month: int, late: bool = False) -> list[dict[str, Any]]:
    tag = "late" if late else "on-time"
    return [
        {
            "id": f"{customer}-{month}-{tag}-{i}",
            "customer": customer,
            "type": "api_call",
            "timestamp": f"2026-{month:02d}-{i % 27 + 1:02d}T{i % 24:02d}:30:00Z",
            "properties": {
                "bytes": (i * 97) % 400 + 1,
                "status": 503 if i % 6 == 0 else 200,
                "region": ("EMEA", "AMER", "APAC")[i % 3],
            },
        }
        for i in range(n)
    ]


def _one_by_one(factory: sessionmaker[Session], subscription_ids: list[str], until: datetime) -> None:
    """Bill ``subscription_ids`` as the run did before chunks: one invoice per transaction."""
    for sid in subscription_ids:
        more = True
        while more:
            with factory() as session:
                moment = database_now(session)
                invoice, more = finalize_next(session, sid, until=until, as_of=moment, now=moment)
                session.commit()
                more = more and invoice is not None


def _billed(factory: sessionmaker[Session], prefix: str) -> dict[tuple[str, str], Any]:
    """(customer without prefix, period start) -> what its invoice billed (fields that do not
    depend on when or in which transaction it was written)."""
    out: dict[tuple[str, str], Any] = {}
    with factory() as session:
        invoices = session.scalars(select(Invoice).where(Invoice.customer_id.like(f"{prefix}%"))).all()
        for inv in invoices:
            lines = session.scalars(
                select(InvoiceLine).where(InvoiceLine.invoice_id == inv.id).order_by(InvoiceLine.position)
            ).all()
            out[(inv.customer_id.removeprefix(prefix), inv.period_start.isoformat())] = (
                inv.status,
                inv.subtotal_minor,
                inv.tax_minor,
                inv.total_minor,
                inv.credits_applied_minor,
                inv.amount_due_minor,
                [
                    (
                        line.kind,
                        line.charge,
                        line.meter,
                        line.quantity,
                        line.amount_minor,
                        {k: v for k, v in (line.details or {}).items() if k not in PER_INVOICE},
                    )
                    for line in lines
                ],
            )  # fmt: skip
    return out


def test_a_chunked_run_bills_what_one_invoice_at_a_time_bills(app, api):
    """Twin customers (same plans, events, taxes, credits): the ``a`` ones billed by the run in
    chunks of 3, the ``b`` ones one invoice per transaction first; every invoice and line agrees,
    in January and in February, whose invoices carry adjustments for late January events."""
    create_meter(api, key="calls", event_type="api_call", group_by=["region"])
    create_meter(api, key="bytes", event_type="api_call", aggregation="sum", value_property="bytes")
    create_meter(api, key="errors", event_type="api_call", filters=[{"property": "status", "op": "gte", "value": 500}])
    fee = {"recurring": {"amount": "9.00", "in_advance": True, "prorate": True}}
    create_plan(api, code="totals", charges=TOTALS_PLAN, fees=fee, publish=True)
    create_plan(api, code="trial", charges=TOTALS_PLAN, free_period_days=10, publish=True)
    create_plan(api, code="regions", charges=REGION_PLAN, fees=fee, publish=True)
    for twin in ("a", "b"):
        for name, (plan, n, tax, credit) in CUSTOMERS.items():
            customer = f"{twin}{name}"
            create_customer(api, id=customer, tax_rate=tax)
            subscribe(api, id=f"s-{customer}", customer=customer, plan=plan, start="2026-01-01T00:00:00Z")
            if credit is not None:
                grant(api, customer, id=f"g-{customer}", amount=credit, effective_at="2026-01-01T00:00:00Z")
            send_events(api, _events(customer, n, month=1) + _events(customer, n // 2, month=2))
    factory = app.state.sessionmaker
    b_subs = [f"s-b{name}" for name in CUSTOMERS]

    _one_by_one(factory, b_subs, FEB)
    assert len(run_billing(factory, until=FEB, chunk=3).created) == len(CUSTOMERS)
    january = _billed(factory, "a")
    assert len(january) == len(CUSTOMERS)
    assert january == _billed(factory, "b")

    for twin in ("a", "b"):  # late January events: February's invoices carry the adjustments
        for name in ("k1", "k4", "k7"):
            send_events(api, _events(f"{twin}{name}", 7, month=1, late=True))
    _one_by_one(factory, b_subs, MAR)
    assert len(run_billing(factory, until=MAR, chunk=3).created) == len(CUSTOMERS)
    both = _billed(factory, "a")
    assert both == _billed(factory, "b")
    adjusted = {c for (c, start), (*_, lines) in both.items() if any(line[0] == "adjustment" for line in lines)}
    assert adjusted == {"k1", "k4", "k7"}


def test_concurrent_chunked_runs_bill_every_period_once_with_gapless_numbers(app, api):
    """Three runs at once over 13 subscriptions in chunks of 4, three months due each (the second
    and third billed one by one after the chunk): every period once, numbers 1..39."""
    create_meter(api, key="calls", event_type="api_call")
    create_plan(api, code="p", charges=[{"code": "c", "meter": "calls", "model": "flat", "unit_price": "1"}],
                publish=True)  # fmt: skip
    for c in range(13):
        create_customer(api, id=f"c{c:02d}")
        subscribe(api, id=f"s{c:02d}", customer=f"c{c:02d}", plan="p", start="2026-01-01T00:00:00Z")
        send_events(api, _events(f"c{c:02d}", c + 1, month=1) + _events(f"c{c:02d}", c, month=3))
    results = billing_runs_at_once(app.state.sessionmaker, until=datetime(2026, 4, 1, tzinfo=UTC), runs=3, chunk=4)
    assert sum(results) == 39
    with app.state.sessionmaker() as session:
        numbers = sorted(session.scalars(select(Invoice.number)))
        assert numbers == [f"INV-{n:06d}" for n in range(1, 40)]
        pairs = session.execute(select(Invoice.subscription_id, Invoice.period_start)).all()
        assert len(set(pairs)) == 39
        assert session.scalar(select(func.count()).where(OutboxMessage.topic == "invoice.finalized")) == 39
        totals = dict(
            session.execute(select(Invoice.customer_id, Invoice.total_minor).where(Invoice.period_start == MAR)).all()
        )
    assert totals == {f"c{c:02d}": c * 100 for c in range(13)}


def test_a_chunk_that_fails_is_billed_one_by_one_and_loses_nothing(app, api, monkeypatch):
    """The chunk's transaction fails after its numbers and lines were written: none of it stays,
    and the same run bills its subscriptions one invoice per transaction, numbered from 1."""
    create_meter(api, key="calls", event_type="api_call")
    create_plan(api, code="p", charges=[{"code": "c", "meter": "calls", "model": "flat", "unit_price": "1"}],
                publish=True)  # fmt: skip
    for c in range(5):
        create_customer(api, id=f"c{c}")
        subscribe(api, id=f"s{c}", customer=f"c{c}", plan="p", start="2026-01-01T00:00:00Z")
        send_events(api, _events(f"c{c}", c + 2, month=1))
    real_emit = finalize.emit_many
    chunks_failed = []

    def emit_failing_for_chunks(session, messages):
        if len({key for _, _, key in messages}) > 1:
            chunks_failed.append(len(messages))
            raise RuntimeError("crash in a chunk")
        return real_emit(session, messages)

    monkeypatch.setattr(finalize, "emit_many", emit_failing_for_chunks)
    result = run_billing(app.state.sessionmaker, until=FEB, chunk=3)
    assert chunks_failed == [3, 2] and result.failed == []
    assert len(result.created) == 5
    with app.state.sessionmaker() as session:
        numbers = sorted(session.scalars(select(Invoice.number)))
        assert numbers == [f"INV-{n:06d}" for n in range(1, 6)]
        assert session.get(InvoiceSequence, "invoice").last_value == 5
        totals = dict(session.execute(select(Invoice.customer_id, Invoice.total_minor)).all())
    assert totals == {f"c{c}": (c + 2) * 100 for c in range(5)}
