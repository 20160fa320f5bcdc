"""``POST /v1/webhooks/stripe``: the provider tells Tollway about payments. No API key: the
request is authenticated by its ``Stripe-Signature``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from tollway.deps import get_session
from tollway.kit.time import utcnow
from tollway.payment import webhook
from tollway.payment.base import InvalidSignature, PaymentProvider
from tollway.payment.errors import InvalidWebhookSignature, PaymentsNotConfigured
from tollway.payment.providers import configured_provider
from tollway.payment.schemas import WebhookAck

router = APIRouter(tags=["payments"])
SessionDep = Annotated[Session, Depends(get_session)]


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent: the signature is computed over these bytes."""
    return await request.body()


def app_provider(request: Request) -> PaymentProvider:
    state = request.app.state
    if not hasattr(state, "payment_provider"):
        state.payment_provider = configured_provider(state.settings)
    provider: PaymentProvider | None = state.payment_provider
    if provider is None or provider.name != "stripe":
        raise PaymentsNotConfigured("Stripe")
    return provider


@router.post("/v1/webhooks/stripe", response_model=WebhookAck)
def stripe_webhook(
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    session: SessionDep,
) -> WebhookAck:
    """Apply a Stripe event (``invoice.paid``, ``invoice.payment_failed``, ``invoice.voided``,
    ``invoice.marked_uncollectible``) once; other types are acknowledged and ignored."""
    provider = app_provider(request)
    try:
        event = provider.parse_webhook(body, request.headers)
    except InvalidSignature as exc:
        raise InvalidWebhookSignature("Stripe-Signature", str(exc)) from exc
    return WebhookAck(outcome=webhook.apply_event(session, provider.name, event, now=utcnow()))
