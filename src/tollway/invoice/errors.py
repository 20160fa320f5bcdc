"""Invoice errors, named after the condition."""

from __future__ import annotations

from tollway.errors import Conflict, NotFound


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"

    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"invoice '{invoice_id}' does not exist")


class InvoiceTransitionNotAllowed(Conflict):
    """Finalized invoices never change; only finalized → paid and finalized → void are allowed."""

    code = "invoice_transition_not_allowed"

    def __init__(self, invoice_id: str, status: str, action: str) -> None:
        super().__init__(f"invoice '{invoice_id}' is {status} and cannot be {action}")
