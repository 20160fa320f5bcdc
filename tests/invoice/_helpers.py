"""Kept for tests that import from here: the factories live in ``tests.factories``. New tests
import ``tests.factories``."""

from tests.factories import (
    calls,
    create_customer,
    create_meter,
    create_plan,
    invoices_of,
    lines_of,
    run_billing,
    send_events,
    subscribe,
)

__all__ = [
    "calls",
    "create_customer",
    "create_meter",
    "create_plan",
    "invoices_of",
    "lines_of",
    "run_billing",
    "send_events",
    "subscribe",
]
