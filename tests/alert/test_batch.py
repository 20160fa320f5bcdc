"""Batched evaluation: a batch of changed customers (their usage read in one statement per
meter) fires exactly what evaluating each customer alone fires, once each, lowest first, also
with several evaluators sharing the queue, and when the batch statement fails."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import create_customer, subscribe
from tollway.alert import evaluate
from tollway.alert.evaluate import evaluate_changed
from tollway.meter import fold
from tollway.models import AlertEvent, UsageChange

from .conftest import events, now_in_period, setup_plan

CALLS = {"acme": 12, "c1": 3, "c2": 5, "c3": 9, "c4": 10, "c5": 16, "c6": 0}
# target 10: thresholds 50/100/150 % = 5, 10, 15 calls; custom alert al_x on c3 at 8 calls


def _expected() -> set[tuple[str, str, str]]:
    out = set()
    for customer, n in CALLS.items():
        out |= {(customer, "plan:api_calls", t) for t, at in (("50", 5), ("100", 10), ("150", 15)) if n >= at}
    out.add(("c3", "alert:al_x", "8"))
    return out


def _setup(api: TestClient, session_factory) -> None:  # type: ignore[no-untyped-def]
    setup_plan(api, notification_target=10)
    for customer in CALLS:
        if customer != "acme":
            create_customer(api, id=customer)
            # c4's period starts in the middle of an hour: its usage has ragged edges
            start = "2026-11-01T00:00:00Z" if customer != "c4" else "2026-11-01T07:31:12Z"
            subscribe(api, id=f"sub_{customer}", customer=customer, plan="pro", start=start, overrides={
                "notification_target": 10})  # fmt: skip
    body = {"id": "al_x", "customer": "c3", "metric": "usage", "meter": "api_calls", "thresholds": ["8"],
            "channels": ["webhook"]}  # fmt: skip
    assert api.post("/v1/alerts", json=body).status_code == 201
    for customer, n in CALLS.items():
        if n:
            half = n // 2
            events(api, half, customer=customer)
            with session_factory() as session:  # half rolled up, half still pending
                fold.apply_pending(session)
                session.commit()
            events(api, n - half, customer=customer, start=500)
    with session_factory() as session:
        fold.apply_pending(session, limit=3)  # some of the rest rolled up, notes every customer
        session.commit()


def _roll(session_factory) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        fold.apply_pending(session)
        session.commit()


def _fired(session_factory) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        rows = session.execute(
            select(AlertEvent.customer_id, AlertEvent.source_key, AlertEvent.threshold).order_by(AlertEvent.id)
        )
        return [(r[0], r[1], r[2]) for r in rows]


def test_several_evaluators_sharing_the_queue_fire_each_threshold_once(api: TestClient, session_factory):  # type: ignore[no-untyped-def]
    _setup(api, session_factory)
    with session_factory() as session:
        fold.apply_pending(session)
        session.commit()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            while evaluate_changed(session_factory, now=now_in_period(), limit=2)[0]:
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    fired = _fired(session_factory)
    assert len(fired) == len(set(fired)) and set(fired) == _expected()
    for customer in CALLS:  # lowest first
        mine = [int(t) for c, s, t in fired if c == customer and s == "plan:api_calls"]
        assert mine == sorted(mine)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(UsageChange)) == 0


def test_a_failing_batch_statement_falls_back_to_customer_by_customer(
    api: TestClient, session_factory, monkeypatch: pytest.MonkeyPatch
):  # type: ignore[no-untyped-def]
    _setup(api, session_factory)
    real = evaluate.usage_totals
    calls: list[int] = []

    def only_one(session, meter, spans):  # type: ignore[no-untyped-def]
        calls.append(len(spans))
        if len(spans) > 1:
            raise RuntimeError("batch statement failed")
        return real(session, meter, spans)

    monkeypatch.setattr(evaluate, "usage_totals", only_one)
    evaluate_changed(session_factory, now=now_in_period())
    assert calls[0] > 1 and all(n == 1 for n in calls[1:])  # the batch, then one by one
    assert sorted(_fired(session_factory)) == sorted(_expected())


def test_usage_rolled_up_while_a_batch_is_evaluated_is_evaluated_again(
    api: TestClient, session_factory, monkeypatch: pytest.MonkeyPatch
):  # type: ignore[no-untyped-def]
    """Events rolled up after the batch read its usage and before it committed note their customer
    again, without waiting for the batch: the next step sees them."""
    setup_plan(api, notification_target=10)
    events(api, 6)
    _roll(session_factory)
    real = evaluate.usage_totals
    late: list[threading.Thread] = []

    def ingest_and_roll() -> None:
        events(api, 6, start=100)
        _roll(session_factory)

    def with_late_events(session, meter, spans):  # type: ignore[no-untyped-def]
        out = real(session, meter, spans)
        if not late:
            late.append(threading.Thread(target=ingest_and_roll))
            late[0].start()
            late[0].join(timeout=3)  # at once: noting waits for no evaluation (SQLite: for the write lock)
        return out

    monkeypatch.setattr(evaluate, "usage_totals", with_late_events)
    assert evaluate_changed(session_factory, now=now_in_period()) == (1, 1)  # 6 calls: 50 %
    late[0].join()
    with session_factory() as session:
        assert list(session.scalars(select(UsageChange.customer))) == ["acme"]
    assert evaluate_changed(session_factory, now=now_in_period()) == (1, 1)  # 12 calls: 100 %
    assert [t for _, _, t in _fired(session_factory)] == ["50", "100"]
