"""Applying a verified provider webhook event to Tollway, once per event id (the inbox)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollway.invoice import service as invoices
from tollway.models import PaymentInboxEvent, PaymentLink
from tollway.notification.outbox import emit
from tollway.payment import service
from tollway.payment.base import ProviderEvent

log = logging.getLogger("tollway.payment")


def _record(session: Session, provider: str, event: ProviderEvent, now: datetime) -> bool:
    """Add the event to the inbox; False when it was applied before."""
    try:
        with session.begin_nested():
            session.add(
                PaymentInboxEvent(
                    provider=provider,
                    event_id=event.id,
                    type=event.type[:100],
                    external_id=event.external_invoice_id,
                    received_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def _link(session: Session, provider: str, event: ProviderEvent) -> PaymentLink | None:
    link = None
    if event.external_invoice_id:
        link = service.find_by_external(session, provider, service.INVOICE, event.external_invoice_id)
    if link is None and event.tollway_invoice_id:  # arrived before the push recorded the provider's id
        link = service.get_link(session, provider, service.INVOICE, event.tollway_invoice_id)
    return link


def apply_event(session: Session, provider: str, event: ProviderEvent, *, now: datetime) -> str:
    """``applied``, ``duplicate`` (this event id was applied before) or ``ignored`` (a type Tollway
    does not act on, or an invoice Tollway did not send)."""
    if not _record(session, provider, event, now):
        return "duplicate"
    if event.kind is None:
        return "ignored"
    link = _link(session, provider, event)
    if link is None:
        log.info("%s event %s (%s) is about an invoice Tollway did not send", provider, event.id, event.type)
        return "ignored"
    invoice = invoices.get_invoice(session, link.tollway_id, for_update=True)
    link.external_id = link.external_id or event.external_invoice_id
    link.url = event.url or link.url
    if event.kind == "paid":
        link.status = "paid"
        if invoice.status == "finalized":
            invoices.mark_paid(session, invoice.id, now=now)  # emits invoice.paid
    elif link.status == "paid" or invoice.status == "paid":
        pass  # a late failure, void or write-off never undoes a payment
    elif event.kind == "payment_failed":
        link.status = "failed"
        emit(session, "invoice.payment_failed", invoices.invoice_data(session, invoice), key=invoice.id)
    elif event.kind == "voided":
        link.status = "void"
        link.sync = "done"
        if invoice.status == "finalized":
            invoices.void_invoice(session, invoice.id, now=now)  # emits invoice.voided
    elif event.kind == "uncollectible":
        link.status = "uncollectible"
    session.flush()
    return "applied"
