"""Outbox handlers: a finalized invoice is queued for a push to the payment provider, a voided one
for a void there, one paid in Tollway (``mark-paid``) for an out-of-band payment there. They only
write ``payment_links`` rows in the outbox drain's own transaction (the provider is called later by
:mod:`tollway.payment.sync`), and are idempotent.

Registered explicitly by the worker at start (:func:`register_handlers`), only when a provider is
configured."""

from __future__ import annotations

from sqlalchemy.orm import Session, object_session

from tollway.kit.time import utcnow
from tollway.models import Invoice, OutboxMessage
from tollway.notification import outbox
from tollway.payment import service

_provider: dict[str, str] = {}


def _session(message: OutboxMessage) -> Session:
    session = object_session(message)
    if session is None:
        raise RuntimeError("payment handlers need the outbox message's own session")
    return session


def on_invoice_finalized(message: OutboxMessage) -> None:
    session = _session(message)
    invoice = session.get(Invoice, str(message.payload["id"]))
    if invoice is not None:
        service.queue_push(session, _provider["name"], invoice, utcnow())


def on_invoice_voided(message: OutboxMessage) -> None:
    service.queue_void(_session(message), _provider["name"], str(message.payload["id"]), utcnow())


def on_invoice_paid(message: OutboxMessage) -> None:
    service.queue_paid(_session(message), _provider["name"], str(message.payload["id"]), utcnow())


HANDLERS = {
    "invoice.finalized": on_invoice_finalized,
    "invoice.voided": on_invoice_voided,
    "invoice.paid": on_invoice_paid,
}


def register_handlers(provider_name: str) -> None:
    _provider["name"] = provider_name
    for topic, handler in HANDLERS.items():
        outbox.register(topic, handler)


def unregister_handlers() -> None:
    for topic, handler in HANDLERS.items():
        outbox.unregister(topic, handler)
