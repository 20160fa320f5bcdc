"""Prepaid credits: grants per customer, an append-only ledger, and their application to invoices
at finalization (``credit.apply``). The contract is docs/credits.md."""
