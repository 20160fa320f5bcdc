"""Payment fixtures: a fake Stripe on loopback, and settings that point Tollway at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.payment.fake_stripe import API_KEY, FakeStripe
from tollway.config import Settings
from tollway.payment.handlers import unregister_handlers

WEBHOOK_SECRET = "whsec_test_tollway_payments"
CLIENT_TIMEOUT = 1.0


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(hold_seconds=CLIENT_TIMEOUT * 2).start()
    yield fake
    fake.stop()


def stripe_env(fake: FakeStripe, retries: int = 0) -> dict[str, str]:
    return {
        "TOLLWAY_STRIPE_API_KEY": API_KEY,
        "TOLLWAY_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TOLLWAY_STRIPE_API_BASE": fake.url,
        "TOLLWAY_STRIPE_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT),
        "TOLLWAY_STRIPE_MAX_NETWORK_RETRIES": str(retries),
    }


@pytest.fixture
def settings(db_url: str, fake_stripe: FakeStripe) -> Iterator[Settings]:
    """The suite's settings plus Stripe, without the library's own retries (so that the sync's
    retries are what the tests see)."""
    yield Settings(
        database_url=db_url,
        run_worker_in_serve=False,
        stripe_api_key=API_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url,
        stripe_timeout_seconds=CLIENT_TIMEOUT,
        stripe_max_network_retries=0,
    )
    unregister_handlers()
