"""The Stripe implementation of :class:`tollway.payment.base.PaymentProvider`.

Every write carries an idempotency key derived from Tollway ids (``tollway-customer-<id>``,
``tollway-invoice-<id>``, ``…-item-<key>``, ``…-finalize``, ``…-void``), so a retry after a
timeout or a 5xx returns the object the first attempt created. A push interrupted for longer than
Stripe keeps idempotency keys (24 h) resumes from the invoice recorded by ``on_created`` and skips
the items already on it (each item carries ``metadata.tollway_item``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import stripe

from tollway.payment.base import (
    ChangeResult,
    EventKind,
    InvalidSignature,
    PaymentCustomer,
    PaymentInvoice,
    ProviderError,
    ProviderEvent,
    PushedInvoice,
)

EVENT_KINDS: dict[str, EventKind] = {
    "invoice.paid": "paid",
    "invoice.payment_failed": "payment_failed",
    "invoice.voided": "voided",
    "invoice.marked_uncollectible": "uncollectible",
}
DESCRIPTION_MAX = 500


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        webhook_secret: str | None = None,
        api_base: str | None = None,
        timeout_seconds: float = 30.0,
        max_network_retries: int = 2,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else {},
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
        )

    def ensure_customer(self, customer: PaymentCustomer) -> str:
        params: dict[str, Any] = {"metadata": {"tollway_customer_id": customer.id}}
        if customer.name:
            params["name"] = customer.name
        if customer.email:
            params["email"] = customer.email
        with _errors():
            created = self.client.v1.customers.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"tollway-customer-{customer.id}"},
            )
        return str(created.id)

    def push_invoice(
        self,
        invoice: PaymentInvoice,
        customer_external_id: str,
        *,
        existing_external_id: str | None,
        on_created: Callable[[str], None],
    ) -> PushedInvoice:
        key = f"tollway-invoice-{invoice.id}"
        with _errors():
            if existing_external_id:
                found = self.client.v1.invoices.retrieve(existing_external_id)
            else:
                params: dict[str, Any] = {
                    "customer": customer_external_id,
                    "currency": invoice.currency.lower(),
                    "collection_method": invoice.collection_method,
                    "auto_advance": True,
                    "pending_invoice_items_behavior": "exclude",
                    "description": f"Invoice {invoice.number}",
                    "metadata": {
                        "tollway_invoice_id": invoice.id,
                        "tollway_invoice_number": invoice.number,
                        "tollway_customer_id": invoice.customer_id,
                    },
                }
                if invoice.collection_method == "send_invoice":
                    params["days_until_due"] = invoice.days_until_due
                found = self.client.v1.invoices.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": key},
                )
                on_created(str(found.id))
            external_id = str(found.id)
            if found.status == "draft":
                present = self._item_keys(external_id)
                for item in invoice.items:
                    if item.key in present:
                        continue
                    self.client.v1.invoice_items.create(
                        params={
                            "customer": customer_external_id,
                            "invoice": external_id,
                            "currency": invoice.currency.lower(),
                            "amount": item.amount_minor,
                            "description": item.description[:DESCRIPTION_MAX],
                            "metadata": {"tollway_invoice_id": invoice.id, "tollway_item": item.key},
                        },
                        options={"idempotency_key": f"{key}-item-{item.key}"},
                    )
                found = self.client.v1.invoices.finalize_invoice(
                    external_id,
                    params={"auto_advance": True},
                    options={"idempotency_key": f"{key}-finalize"},
                )
        return PushedInvoice(external_id=external_id, url=found.hosted_invoice_url, status=str(found.status))

    def _item_keys(self, external_id: str) -> set[str]:
        items = self.client.v1.invoice_items.list(params={"invoice": external_id, "limit": 100})
        return {str(getattr(item.metadata, "tollway_item", "")) for item in items.auto_paging_iter()}

    def void_invoice(self, external_id: str, *, tollway_invoice_id: str) -> ChangeResult:
        with _errors():
            found = self.client.v1.invoices.retrieve(external_id)
            if found.status == "void":
                return ChangeResult(changed=False, status="void", note="already void at Stripe")
            if found.status == "paid":
                return ChangeResult(changed=False, status="paid", note="already paid at Stripe: refund it there")
            if found.status == "draft":
                self.client.v1.invoices.delete(external_id)
                return ChangeResult(changed=True, status="void", note="draft deleted at Stripe")
            self.client.v1.invoices.void_invoice(
                external_id, options={"idempotency_key": f"tollway-invoice-{tollway_invoice_id}-void"}
            )
        return ChangeResult(changed=True, status="void")

    def mark_paid(self, external_id: str, *, tollway_invoice_id: str) -> ChangeResult:
        with _errors():
            found = self.client.v1.invoices.retrieve(external_id)
            if found.status in ("paid", "void"):
                return ChangeResult(changed=False, status=str(found.status), note=f"already {found.status} at Stripe")
            paid = self.client.v1.invoices.pay(
                external_id,
                params={"paid_out_of_band": True},
                options={"idempotency_key": f"tollway-invoice-{tollway_invoice_id}-paid"},
            )
        return ChangeResult(changed=True, status=str(paid.status))

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        try:
            stripe.WebhookSignature.verify_header(
                payload, headers.get("stripe-signature"), self.webhook_secret, stripe.Webhook.DEFAULT_TOLERANCE
            )
            body = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise InvalidSignature(str(exc).split("\n")[0]) from exc
        data = body.get("data") if isinstance(body, dict) else None
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(obj, dict):
            raise InvalidSignature("the body is not a Stripe event (id, type, data.object)")
        event_type = str(body.get("type") or "")
        kind = EVENT_KINDS.get(event_type) if obj.get("object") == "invoice" else None
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        return ProviderEvent(
            id=body["id"],
            type=event_type,
            kind=kind,
            external_invoice_id=_text(obj.get("id")) if kind else None,
            tollway_invoice_id=_text(metadata.get("tollway_invoice_id")) if kind else None,
            url=_text(obj.get("hosted_invoice_url")) if kind else None,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the library's errors into :class:`ProviderError` (the sync retries them later)."""
    try:
        yield
    except stripe.StripeError as exc:
        raise ProviderError(f"{type(exc).__name__}: {exc.user_message or exc}") from exc
