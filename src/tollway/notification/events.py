"""The webhook event types of the contract. An outbox topic that is one of them is sent to the
webhook endpoints subscribed to it; other topics (internal work such as ``email.alert``) never are."""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "alert.triggered",
    "limit.reached",
    "credits.low_balance",
    "credits.depleted",
    "invoice.finalized",
    "invoice.paid",
    "invoice.voided",
    "invoice.payment_failed",
    "subscription.created",
    "subscription.canceled",
)
