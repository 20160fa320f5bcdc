"""Invoice errors, named after the condition."""

from __future__ import annotations

from tollway.errors import Conflict, NotFound, TollwayError


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"

    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"invoice '{invoice_id}' does not exist")


class InvoiceTransitionNotAllowed(Conflict):
    """Finalized invoices never change; only finalized → paid and finalized → void are allowed."""

    code = "invoice_transition_not_allowed"

    def __init__(self, invoice_id: str, status: str, action: str) -> None:
        super().__init__(f"invoice '{invoice_id}' is {status} and cannot be {action}")


class UnbillableUsage(TollwayError):
    """The usage of a period cannot be priced (an amount past what money arithmetic can hold)."""

    status = 422
    code = "unbillable_usage"

    def __init__(self, subscription_id: str, reason: str) -> None:
        super().__init__(f"subscription '{subscription_id}': its usage cannot be priced: {reason}")
