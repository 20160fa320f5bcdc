"""credits.low_balance and credits.depleted: emitted through the outbox once per crossing, with
the contract's data, re-armed when the balance goes back up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tests.credits.conftest import grant
from tests.factories import create_customer, send_events, subscribe
from tollway.config import Settings
from tollway.credit.alerts import check_all
from tollway.models import OutboxMessage
from tollway.worker import Worker


def _messages(app) -> list[tuple[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    with app.state.sessionmaker() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic.like("credits.%")).order_by(OutboxMessage.id)
        )
        return [(m.topic, m.payload) for m in rows]


def _use(api, customer: str, n: int, tag: str) -> None:  # type: ignore[no-untyped-def]
    """``n`` calls (0.50 each) a minute ago: in the current billing period."""
    at = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0).isoformat()
    send_events(
        api, [{"id": f"{tag}-{i}", "customer": customer, "type": "api_call", "timestamp": at} for i in range(n)]
    )


def test_low_balance_and_depleted_fire_once_per_crossing(app, api, per_call_plan):
    factory = app.state.sessionmaker
    create_customer(api, id="pre", billing_type="prepaid", low_balance_threshold="5.00")
    subscribe(api, id="s1", customer="pre", plan=per_call_plan, start="2026-01-01T00:00:00Z")
    assert check_all(factory, now=datetime.now(UTC)) == 0  # first look: at 0 <= 5, but it did not fall there
    grant(api, "pre", id="g1", amount="10.00", effective_at="2026-01-01T00:00:00Z")  # observed: 10 > 5, armed
    assert _messages(app) == []
    _use(api, "pre", 12, "a")  # 6.00 used: ongoing 4.00
    assert check_all(factory, now=datetime.now(UTC)) == 1
    assert check_all(factory, now=datetime.now(UTC)) == 0  # once per crossing
    assert _messages(app) == [
        (
            "credits.low_balance",
            {"customer": "pre", "currency": "USD", "balance": "10.00", "ongoing_balance": "4.00", "threshold": "5"},
        )
    ]
    _use(api, "pre", 10, "b")  # 11.00 used: ongoing -1.00
    Worker(factory, Settings(database_url=app.state.settings.database_url)).credits_step()
    topics = [t for t, _ in _messages(app)]
    assert topics == ["credits.low_balance", "credits.depleted"]
    assert _messages(app)[-1][1]["ongoing_balance"] == "-1.00"
    check_all(factory, now=datetime.now(UTC))
    assert len(_messages(app)) == 2
    # A top-up lifts it above both (observed at once, in the grant's request): re-armed.
    grant(api, "pre", id="g2", amount="20.00", effective_at="2026-01-01T00:00:00Z")
    assert len(_messages(app)) == 2
    _use(api, "pre", 30, "c")  # 26.00 used of 30.00: ongoing 4.00
    check_all(factory, now=datetime.now(UTC))
    assert [t for t, _ in _messages(app)] == ["credits.low_balance", "credits.depleted", "credits.low_balance"]


def test_a_void_that_empties_the_balance_fires_depleted_in_its_own_transaction(app, api, acme):
    grant(api, acme, id="g", amount="3.00")
    api.post("/v1/credit-grants/g/void").raise_for_status()
    assert _messages(app) == [
        (
            "credits.depleted",
            {"customer": "acme", "currency": "USD", "balance": "0.00", "ongoing_balance": "0.00", "threshold": None},
        )
    ]


def test_customers_without_threshold_or_credit_are_never_notified(app, api, acme, per_call_plan):
    subscribe(api, id="s1", customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    _use(api, acme, 5, "x")
    assert check_all(app.state.sessionmaker, now=datetime.now(UTC)) == 0
    assert _messages(app) == []
