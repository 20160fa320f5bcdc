"""Pydantic I/O for payments."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PaymentStatus = Literal["pending", "paid", "failed", "void", "uncollectible"]
PaymentCollection = Literal["charge_automatically", "send_invoice"]


class Payment(BaseModel):
    """An invoice's payment at the provider. ``external_id`` and ``url`` are null until the invoice
    has been pushed; ``void`` and ``uncollectible`` reflect what was done at the provider."""

    provider: str
    external_id: str | None
    status: PaymentStatus
    url: str | None = Field(default=None, description="the provider's hosted payment page")


class WebhookAck(BaseModel):
    received: bool = True
    outcome: str = Field(description="applied | duplicate | ignored")
