"""The payment-provider interface. Domain code talks to a provider only through this Protocol and
these plain data classes; the provider's own library stays inside its subpackage (``stripe/``).

Every call that creates something takes identifiers derived from Tollway ids, so that the provider
implementation can make it idempotent (a retry after a timeout, a 5xx or a crash never creates a
second customer, item or invoice)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

CollectionMethod = Literal["charge_automatically", "send_invoice"]
EventKind = Literal["paid", "payment_failed", "voided", "uncollectible"]


class ProviderError(Exception):
    """The provider could not be reached or refused a call; the caller retries later."""


class InvalidSignature(Exception):
    """A webhook whose signature (or body) does not verify."""


@dataclass(frozen=True)
class PaymentCustomer:
    id: str
    name: str | None
    email: str | None


@dataclass(frozen=True)
class PaymentItem:
    """One invoice item. ``key`` is unique within its invoice and stable across retries."""

    key: str
    description: str
    amount_minor: int


@dataclass(frozen=True)
class PaymentInvoice:
    id: str
    number: str
    customer_id: str
    currency: str
    collection_method: CollectionMethod
    days_until_due: int
    items: list[PaymentItem]

    @property
    def amount_due_minor(self) -> int:
        return sum(item.amount_minor for item in self.items)


@dataclass(frozen=True)
class PushedInvoice:
    external_id: str
    url: str | None
    status: str
    """The provider's own status of the invoice (``open``, ``paid``...), for logs."""


@dataclass(frozen=True)
class ChangeResult:
    """What a void or an out-of-band payment did at the provider."""

    changed: bool
    status: str
    """The provider invoice's status afterwards (``void``, ``paid``...)."""
    note: str | None = None
    """Why nothing changed (already void, already paid at the provider...)."""


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook event, reduced to what Tollway acts on. ``kind`` is None for the types
    Tollway ignores (they are acknowledged and recorded once all the same)."""

    id: str
    type: str
    kind: EventKind | None
    external_invoice_id: str | None = None
    tollway_invoice_id: str | None = None
    url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: str

    def ensure_customer(self, customer: PaymentCustomer) -> str:
        """Create the provider's customer for ``customer`` (idempotently); return its id."""
        ...

    def push_invoice(
        self,
        invoice: PaymentInvoice,
        customer_external_id: str,
        *,
        existing_external_id: str | None,
        on_created: Callable[[str], None],
    ) -> PushedInvoice:
        """Create, fill and finalize the provider's invoice. ``existing_external_id`` is the invoice
        a previous, interrupted attempt created (``on_created`` is called as soon as one exists,
        so that the caller can record it before anything else can fail)."""
        ...

    def void_invoice(self, external_id: str, *, tollway_invoice_id: str) -> ChangeResult:
        """Void (or delete, while a draft) the provider's invoice."""
        ...

    def mark_paid(self, external_id: str, *, tollway_invoice_id: str) -> ChangeResult:
        """Record at the provider that the invoice was paid some other way (no charge)."""
        ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify the signature of a webhook and read it; raises :class:`InvalidSignature`."""
        ...
