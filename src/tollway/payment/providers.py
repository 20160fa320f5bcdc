"""Which payment provider this server uses (from the settings), built once per process."""

from __future__ import annotations

from tollway.config import Settings
from tollway.payment.base import PaymentProvider


def configured_provider(settings: Settings) -> PaymentProvider | None:
    """The Stripe provider when ``TOLLWAY_STRIPE_API_KEY`` is set, else None (payments off)."""
    if not settings.stripe_api_key:
        return None
    from tollway.payment.stripe import StripeProvider  # the only place that loads the library

    return StripeProvider(
        settings.stripe_api_key,
        webhook_secret=settings.stripe_webhook_secret,
        api_base=settings.stripe_api_base,
        timeout_seconds=settings.stripe_timeout_seconds,
        max_network_retries=settings.stripe_max_network_retries,
    )
