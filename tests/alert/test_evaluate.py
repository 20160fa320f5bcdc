"""Alert evaluation: plan notifications and custom alerts fire each threshold once per
subscription per period, lowest first, re-armed by a new period, never twice under concurrency,
and only for customers with new usage."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import create_customer, subscribe
from tollway.alert.evaluate import evaluate_changed, evaluate_customer
from tollway.meter import fold
from tollway.models import AlertEvent, OutboxMessage, UsageChange

from .conftest import events, now_in_period, setup_plan


def _roll(session_factory) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        fold.apply_pending(session)
        session.commit()


def _triggered(session_factory) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    with session_factory() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "alert.triggered").order_by(OutboxMessage.id)
        )
        return [dict(r.payload) for r in rows]


def test_plan_notifications_fire_once_lowest_first_with_the_target_override(api: TestClient, session_factory):  # type: ignore[no-untyped-def]
    setup_plan(api, notification_target=10)  # thresholds 50/100/150 % of 10 = 5, 10, 15 calls
    events(api, 12)
    _roll(session_factory)
    assert evaluate_changed(session_factory, now=now_in_period())[1] == 2
    fired = _triggered(session_factory)
    assert [(f["threshold"], f["threshold_value"]) for f in fired] == [("50", "5"), ("100", "10")]
    assert fired[0] == {
        "source": "plan_notification", "alert": None, "customer": "acme", "subscription": "sub_1",
        "meter": "api_calls", "metric": "usage", "threshold": "50", "threshold_value": "5", "value": "12",
        "period_start": "2026-11-01T00:00:00+00:00", "period_end": "2026-11-30T23:00:00+00:00",  # Rome
    }  # fmt: skip
    with session_factory() as session:  # each firing also queues its e-mail
        assert session.scalar(select(func.count()).where(OutboxMessage.topic == "email.alert")) == 2
        assert session.scalar(select(func.count()).select_from(UsageChange)) == 0  # cleared
    assert evaluate_changed(session_factory, now=now_in_period())[1] == 0  # nothing new
    events(api, 2, start=100)
    _roll(session_factory)
    assert evaluate_changed(session_factory, now=now_in_period())[1] == 0  # 14 < 15: nothing fires twice
    events(api, 1, start=200)
    _roll(session_factory)
    assert evaluate_changed(session_factory, now=now_in_period())[1] == 1
    assert [f["threshold"] for f in _triggered(session_factory)] == ["50", "100", "150"]
    page = api.get("/v1/alert-events?customer=acme&limit=2").json()
    assert [e["threshold"] for e in page["data"]] == ["50", "100"] and page["next"]
    rest = api.get(f"/v1/alert-events?customer=acme&after={page['next']}").json()
    assert [e["threshold"] for e in rest["data"]] == ["150"] and rest["next"] is None
    assert rest["data"][0]["value"] == "15" and rest["data"][0]["id"].startswith("ae_")
    assert api.get("/v1/alert-events?customer=other").json()["data"] == []


def test_a_new_period_rearms(api: TestClient, session_factory):  # type: ignore[no-untyped-def]
    setup_plan(api, notification_target=4)
    events(api, 3)
    events(api, 3, day="2026-12-03")
    december = datetime(2026, 12, 5, tzinfo=UTC)
    with session_factory() as session:
        assert [f["threshold"] for f in evaluate_customer(session, "acme", now=now_in_period())] == ["50"]
        assert [f["threshold"] for f in evaluate_customer(session, "acme", now=december)] == ["50"]
        assert evaluate_customer(session, "acme", now=december) == []
        session.commit()
    starts = [f["period_start"] for f in _triggered(session_factory)]
    assert starts == ["2026-11-01T00:00:00+00:00", "2026-11-30T23:00:00+00:00"]  # December in Rome


def test_custom_usage_and_spend_alerts(api: TestClient, session_factory):  # type: ignore[no-untyped-def]
    setup_plan(api, notifications=None)
    create_customer(api, id="globex", email="it@globex.example.com")
    subscribe(api, id="sub_2", customer="globex", plan="pro", start="2026-11-01T00:00:00Z")
    r = api.post("/v1/alerts", json={"id": "al_u", "customer": "acme", "metric": "usage", "meter": "api_calls",
                                      "thresholds": ["3", "8"], "channels": ["webhook"]})  # fmt: skip
    assert r.status_code == 201, r.text
    assert api.post("/v1/alerts", json={"id": "al_s", "metric": "spend", "thresholds": ["2.00", "100"],
                                         "channels": ["email"]}).status_code == 201  # fmt: skip
    events(api, 5)  # acme: 5 calls = 2.50
    events(api, 4, customer="globex")  # globex: 2.00
    _roll(session_factory)
    assert evaluate_changed(session_factory, now=now_in_period())[1] == 3
    webhook = _triggered(session_factory)
    assert [(f["alert"], f["customer"], f["threshold"], f["value"]) for f in webhook] == [("al_u", "acme", "3", "5")]
    got = api.get("/v1/alert-events").json()["data"]
    assert sorted((e["alert"], e["customer"], e["metric"], e["value"]) for e in got) == [
        ("al_s", "acme", "spend", "2.5"), ("al_s", "globex", "spend", "2"), ("al_u", "acme", "usage", "5"),
    ]  # fmt: skip
    with session_factory() as session:  # al_s is e-mail only: no webhook, two e-mails
        assert session.scalar(select(func.count()).where(OutboxMessage.topic == "email.alert")) == 2


def test_concurrent_evaluators_never_double_fire(api: TestClient, session_factory):  # type: ignore[no-untyped-def]
    setup_plan(api, notification_target=2)
    events(api, 5)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with session_factory() as session:
                fired = evaluate_customer(session, "acme", now=now_in_period())
                session.commit()
                results.append(len(fired))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AlertEvent)) == 3
    assert sorted(f["threshold"] for f in _triggered(session_factory)) == ["100", "150", "50"]
    assert sum(results) == 3


def test_only_customers_with_new_usage_are_evaluated(api: TestClient, session_factory):  # type: ignore[no-untyped-def]
    setup_plan(api, notification_target=2)
    create_customer(api, id="quiet")
    events(api, 1, customer="quiet")
    events(api, 1)
    _roll(session_factory)
    with session_factory() as session:
        assert sorted(session.scalars(select(UsageChange.customer))) == ["acme", "quiet"]
    evaluate_changed(session_factory, now=now_in_period())
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(UsageChange)) == 0
    assert [f["threshold"] for f in _triggered(session_factory)] == ["50"]


def test_with_nothing_to_evaluate_against_every_note_is_cleared_at_once(api: TestClient, session_factory):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        session.add_all([UsageChange(customer=f"c{i}") for i in range(5)])
        session.commit()
    assert evaluate_changed(session_factory, now=now_in_period(), limit=2) == (5, 0)  # no alert, no plan
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(UsageChange)) == 0
    assert evaluate_changed(session_factory, now=now_in_period(), limit=2) == (0, 0)


def test_with_rules_the_notes_are_taken_a_batch_at_a_time(api: TestClient, session_factory):  # type: ignore[no-untyped-def]
    setup_plan(api, notification_target=10)
    with session_factory() as session:
        session.add_all([UsageChange(customer=f"c{i}") for i in range(5)])
        session.commit()
    assert evaluate_changed(session_factory, now=now_in_period(), limit=2) == (2, 0)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(UsageChange)) == 3
