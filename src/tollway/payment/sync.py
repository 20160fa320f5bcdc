"""The provider sync: pushes finalized invoices to the payment provider and voids them there,
from the worker, with retries and backoff.

Work is queued as ``payment_links`` rows (``sync`` = ``push`` or ``void``) by the outbox handlers
and by ``tollway payments sync``. A step claims due rows (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL) by moving their ``next_attempt_at`` one lease ahead, then calls the provider with no
database transaction open (SQLite would otherwise hold its write lock for the whole call). A
failure schedules the next attempt with the outbox's backoff; the provider's idempotency keys
make a retry, or two workers pushing the same invoice, harmless. It runs in its own thread, so a
slow or failing provider never delays billing runs or ingestion."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tollway.db import is_postgres, session_scope
from tollway.kit.time import utcnow
from tollway.models import Customer, Invoice, InvoiceLine, PaymentLink
from tollway.notification.outbox import backoff
from tollway.payment import service
from tollway.payment.base import PaymentCustomer, PaymentInvoice, PaymentItem, PaymentProvider

log = logging.getLogger("tollway.payment")

LEASE = timedelta(minutes=5)
"""How long a claimed row is left to the worker that claimed it before another may retry it."""


@dataclass
class SyncResult:
    done: int = 0
    failed: int = 0


def invoice_document(session: Session, invoice: Invoice, customer: Customer) -> PaymentInvoice:
    """The provider invoice of a Tollway invoice: one item per line, the tax, the credits as one
    negative item; the items add up to the amount due."""
    items = [
        PaymentItem(key=f"line-{line.position}", description=line.description, amount_minor=line.amount_minor)
        for line in session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.position)
        )
    ]
    if invoice.tax_minor:
        items.append(
            PaymentItem(
                key="tax", description=f"Tax ({invoice.tax_rate.normalize():f}%)", amount_minor=invoice.tax_minor
            )
        )
    credits = service.credits_applied_minor(invoice)
    if credits:
        items.append(PaymentItem(key="credits", description="Credits applied", amount_minor=-credits))
    document = PaymentInvoice(
        id=invoice.id,
        number=invoice.number,
        customer_id=customer.id,
        currency=invoice.currency,
        collection_method="send_invoice" if customer.payment_collection == "send_invoice" else "charge_automatically",
        # Stripe wants a positive number of days: terms of 0 days (due on issue) become 1 there.
        days_until_due=max((invoice.due_at - invoice.issued_at).days, 1),
        items=items,
    )
    if document.amount_due_minor != service.amount_due_minor(invoice):
        raise ValueError(
            f"invoice {invoice.id}: items add up to {document.amount_due_minor}, "
            f"amount due is {service.amount_due_minor(invoice)} (minor units)"
        )
    return document


class PaymentSync:
    def __init__(self, factory: sessionmaker[Session], provider: PaymentProvider) -> None:
        self.factory = factory
        self.provider = provider
        self._thread: threading.Thread | None = None

    # -- the loop -------------------------------------------------------------------------------

    def claim_due(self, *, now: datetime, limit: int = 50) -> list[int]:
        with session_scope(self.factory) as session:
            stmt = (
                select(PaymentLink)
                .where(
                    PaymentLink.provider == self.provider.name,
                    PaymentLink.sync != "done",
                    PaymentLink.next_attempt_at <= now,
                )
                .order_by(PaymentLink.next_attempt_at, PaymentLink.id)
                .limit(limit)
            )
            if is_postgres(session):
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(session.scalars(stmt))
            for row in rows:
                row.attempts += 1
                row.next_attempt_at = now + LEASE
            return [row.id for row in rows]

    def step(self, *, now: datetime | None = None, limit: int = 50) -> SyncResult:
        """Do the work that is due (one batch)."""
        result = SyncResult()
        for link_id in self.claim_due(now=now or utcnow(), limit=limit):
            if self.process(link_id, now=now):
                result.done += 1
            else:
                result.failed += 1
        return result

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                while not stop.is_set():
                    result = self.step()
                    if result.done + result.failed == 0:
                        break
            except Exception:
                log.exception("payment sync step failed; retrying")
            stop.wait(interval)

    def start_thread(self, stop: threading.Event, interval: float) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, args=(stop, interval), name="tollway-payments", daemon=True)
        self._thread.start()
        return self._thread

    def queue_unpushed(self, *, since: datetime | None) -> list[int]:
        """The backfill: queue every finalized invoice never sent; the ids of the links owed work."""
        with session_scope(self.factory) as session:
            return service.queue_unpushed(session, self.provider.name, since=since, now=utcnow())

    # -- one row --------------------------------------------------------------------------------

    def process(self, link_id: int, *, now: datetime | None = None) -> bool:
        """Do the work owed on one link now; on failure schedule a retry. True when done."""
        try:
            with session_scope(self.factory) as session:
                link = session.get(PaymentLink, link_id)
                kind = link.sync if link is not None else "done"
            if kind == "push":
                self._push(link_id)
            elif kind in ("void", "paid"):
                self._change(link_id, kind)
            return True
        except Exception as exc:
            self._failed(link_id, exc, now or utcnow())
            return False

    def _failed(self, link_id: int, exc: Exception, now: datetime) -> None:
        log.warning("payment sync of link %s failed: %s", link_id, exc)
        with session_scope(self.factory) as session:
            link = session.get(PaymentLink, link_id)
            if link is not None and link.sync != "done":
                link.last_error = f"{type(exc).__name__}: {exc}"[:4000]
                link.next_attempt_at = now + backoff(max(link.attempts, 1))

    def _set(self, link_id: int, **values: object) -> None:
        with session_scope(self.factory) as session:
            link = session.get(PaymentLink, link_id)
            assert link is not None
            for name, value in values.items():
                setattr(link, name, value)

    def _push(self, link_id: int) -> None:
        name = self.provider.name
        with session_scope(self.factory) as session:
            link = session.get(PaymentLink, link_id)
            assert link is not None
            invoice = session.get(Invoice, link.tollway_id)
            if invoice is None or invoice.status != "finalized" or service.amount_due_minor(invoice) <= 0:
                # Paid or voided in Tollway before it reached the provider: nothing to collect.
                if link.external_id is None:
                    session.delete(link)
                else:
                    link.sync = "void" if invoice is not None and invoice.status == "void" else "done"
                return
            customer = session.get(Customer, invoice.customer_id)
            assert customer is not None
            document = invoice_document(session, invoice, customer)
            who = PaymentCustomer(id=customer.id, name=customer.name, email=customer.email)
            customer_link = service.get_link(session, name, service.CUSTOMER, customer.id)
            customer_external = customer_link.external_id if customer_link is not None else None
            existing = link.external_id
        if customer_external is None:
            created = self.provider.ensure_customer(who)
            with session_scope(self.factory) as session:
                customer_external = service.record_customer(session, name, who.id, created, utcnow())
        pushed = self.provider.push_invoice(
            document,
            customer_external,
            existing_external_id=existing,
            on_created=lambda external_id: self._set(link_id, external_id=external_id),
        )
        with session_scope(self.factory) as session:
            link = session.get(PaymentLink, link_id)
            assert link is not None
            link.external_id = pushed.external_id
            link.url = pushed.url or link.url
            link.status = link.status or "pending"
            link.last_error = None
            link.next_attempt_at = None
            if link.sync == "push":  # a void queued meanwhile stays queued
                link.sync = "done"
        log.info("invoice %s pushed to %s as %s (%s)", document.number, name, pushed.external_id, pushed.status)

    def _change(self, link_id: int, kind: str) -> None:
        """Void the provider invoice, or mark it paid out of band."""
        with session_scope(self.factory) as session:
            link = session.get(PaymentLink, link_id)
            assert link is not None
            external_id, invoice_id = link.external_id, link.tollway_id
        note, status = None, "void" if kind == "void" else "paid"
        if external_id is not None:
            change = self.provider.void_invoice if kind == "void" else self.provider.mark_paid
            result = change(external_id, tollway_invoice_id=invoice_id)
            note, status = result.note, result.status
            if result.changed:
                log.info("provider invoice %s of %s: %s", external_id, invoice_id, status)
        with session_scope(self.factory) as session:
            link = session.get(PaymentLink, link_id)
            assert link is not None
            link.sync = "done"
            link.next_attempt_at = None
            link.last_error = note
            if link.status != "paid":
                link.status = "paid" if status == "paid" else "void"
