"""Stripe, the first payment provider, through the official ``stripe`` library (StripeClient).
The only package of Tollway that imports ``stripe``."""

from tollway.payment.stripe.provider import StripeProvider

__all__ = ["StripeProvider"]
