"""Webhook delivery by the worker to a real HTTP receiver: signed, retried on one schedule per
delivery with the same webhook-id, timeouts, the SSRF guard, auto-disable and manual retry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from tollway.config import Settings
from tollway.models import OutboxMessage, WebhookDelivery
from tollway.notification import outbox
from tollway.notification.delivery import RETRY_DELAYS, deliver_due
from tollway.worker import register_handlers

from .conftest import Receiver


def _endpoint(api: TestClient, url: str, id: str = "wh_1", **fields: object) -> str:
    r = api.post("/v1/webhook-endpoints", json={"id": id, "url": url, **fields})
    assert r.status_code == 201, r.text
    return str(r.json()["secret"])


def _emit(session_factory, topic: str = "invoice.paid", data: dict | None = None) -> None:  # type: ignore[no-untyped-def,type-arg]
    with session_factory() as session:
        outbox.emit(session, topic, data or {"id": "inv_1", "total": "12.50"}, key="k")
        session.commit()


def _deliveries(api: TestClient, endpoint: str = "wh_1") -> list[dict]:  # type: ignore[type-arg]
    r = api.get(f"/v1/webhook-endpoints/{endpoint}/deliveries")
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def test_signed_delivery_verifies_with_standard_webhooks(api, session_factory, settings, receiver: Receiver):  # type: ignore[no-untyped-def]
    register_handlers(settings)
    secret = _endpoint(api, receiver.url)
    _endpoint(api, receiver.url + "?other", id="wh_2", event_types=["alert.triggered"])  # not subscribed
    _emit(session_factory, "invoice.paid", {"id": "inv_1", "total": "12.50"})
    _emit(session_factory, "email.alert", {"internal": True})  # not a webhook type: never sent
    assert outbox.drain(session_factory) == (2, 0)
    assert deliver_due(session_factory, settings) == (1, 0)
    (got,) = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "invoice.paid" and payload["data"] == {"id": "inv_1", "total": "12.50"}
    assert got.headers["webhook-id"] == payload["id"] and payload["id"].startswith("msg_")
    assert got.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception):  # noqa: B017 - another secret does not verify
        Webhook("whsec_" + "QUJD" * 8).verify(got.body, got.headers)
    (d,) = _deliveries(api)
    assert d["status"] == "delivered" and d["attempts"] == 1 and d["last_status_code"] == 200
    assert d["message_id"] == payload["id"] and d["type"] == "invoice.paid" and d["last_duration_ms"] >= 0
    assert _deliveries(api, "wh_2") == []


def test_fan_out_is_idempotent_and_independent_of_other_handlers(api, session_factory, settings, receiver):  # type: ignore[no-untyped-def]
    register_handlers(settings)
    _endpoint(api, receiver.url)
    calls = {"stripe": 0}

    def flaky_stripe_push(message: OutboxMessage) -> None:
        calls["stripe"] += 1
        raise ConnectionError("stripe down")

    outbox.register("invoice.paid", flaky_stripe_push, name="test.stripe")
    try:
        _emit(session_factory)
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert outbox.drain(session_factory, now=now) == (0, 1)
        assert outbox.drain(session_factory, now=now + timedelta(seconds=10)) == (0, 1)  # only stripe again
        with session_factory() as session:
            assert len(session.scalars(select(WebhookDelivery)).all()) == 1  # fanned out once
            message = session.scalars(select(OutboxMessage)).one()
            assert message.handled == ["webhooks.fan_out"] and "stripe down" in (message.last_error or "")
        assert calls["stripe"] == 2
        # The webhook went out although the other handler keeps failing.
        assert deliver_due(session_factory, settings) == (1, 0)
        assert len(receiver.received) == 1
    finally:
        outbox.unregister("invoice.paid", flaky_stripe_push, name="test.stripe")


def test_failures_retry_with_the_same_webhook_id_until_delivered(api, session_factory, settings, receiver):  # type: ignore[no-untyped-def]
    register_handlers(settings)
    _endpoint(api, receiver.url)
    receiver.statuses = [500, 503]
    _emit(session_factory)
    outbox.drain(session_factory)
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    assert deliver_due(session_factory, settings, now=t0) == (0, 1)
    (d,) = _deliveries(api)
    assert d["status"] == "pending" and d["attempts"] == 1 and d["last_status_code"] == 500
    assert "HTTP 500" in d["last_error"]
    assert datetime.fromisoformat(d["next_attempt_at"]) == t0 + RETRY_DELAYS[0]
    assert deliver_due(session_factory, settings, now=t0 + timedelta(seconds=1)) == (0, 0)  # not due yet
    assert deliver_due(session_factory, settings, now=t0 + timedelta(seconds=6)) == (0, 1)
    (d,) = _deliveries(api)
    assert datetime.fromisoformat(d["next_attempt_at"]) == t0 + timedelta(seconds=6) + RETRY_DELAYS[1]
    assert deliver_due(session_factory, settings, now=t0 + timedelta(minutes=6)) == (1, 0)
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1
    bodies = {r.body for r in receiver.received}
    assert len(bodies) == 1  # the same message every time
    (d,) = _deliveries(api)
    assert d["status"] == "delivered" and d["attempts"] == 3 and d["last_error"] is None


def test_schedule_spans_a_day_then_fails_and_manual_retry_restarts_it(api, session_factory, settings):  # type: ignore[no-untyped-def]
    assert sum(RETRY_DELAYS, timedelta()) >= timedelta(hours=24)
    assert list(RETRY_DELAYS) == sorted(RETRY_DELAYS)
    register_handlers(settings)
    from tests.conftest import free_port

    _endpoint(api, f"http://127.0.0.1:{free_port()}/down")  # nothing listens there
    _emit(session_factory)
    outbox.drain(session_factory)
    t = datetime.now(UTC) + timedelta(seconds=1)
    for _ in range(len(RETRY_DELAYS) + 1):
        assert deliver_due(session_factory, settings, now=t) == (0, 1)
        (d,) = _deliveries(api)
        if d["next_attempt_at"]:
            t = datetime.fromisoformat(d["next_attempt_at"])
    assert d["status"] == "failed" and d["attempts"] == len(RETRY_DELAYS) + 1 and d["next_attempt_at"] is None
    assert "ConnectError" in d["last_error"]
    r = api.post(f"/v1/webhook-deliveries/{d['id']}/retry")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert deliver_due(session_factory, settings, now=datetime.now(UTC) + timedelta(seconds=1)) == (0, 1)
    (d,) = _deliveries(api)
    assert d["status"] == "pending" and d["attempts"] == len(RETRY_DELAYS) + 2  # a fresh schedule


def test_timeout_and_ssrf_guard(api, session_factory, settings, receiver):  # type: ignore[no-untyped-def]
    register_handlers(settings)
    _endpoint(api, receiver.url)
    receiver.delay = 1.5
    _emit(session_factory)
    outbox.drain(session_factory)
    fast = settings.model_copy(update={"webhook_timeout_seconds": 0.3})
    assert deliver_due(session_factory, fast) == (0, 1)
    (d,) = _deliveries(api)
    assert d["last_error"].startswith("timeout") and d["last_status_code"] is None

    strict = settings.model_copy(update={"webhook_allow_private_urls": False})
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert deliver_due(session_factory, strict, now=later) == (0, 1)
    (d,) = _deliveries(api)
    assert "non-public address 127.0.0.1" in d["last_error"]
    assert len(receiver.received) == 1  # the refused attempt never reached the receiver


def test_endpoint_disabled_after_the_limit_and_reenabled_by_patch(api, session_factory, settings, receiver):  # type: ignore[no-untyped-def]
    register_handlers(settings)
    _endpoint(api, receiver.url)
    receiver.statuses = [500, 500, 500]
    for _ in range(3):
        _emit(session_factory)
    outbox.drain(session_factory)
    limited = settings.model_copy(update={"webhook_disable_after_failures": 2, "webhook_disable_after_seconds": 0})
    t = datetime.now(UTC) + timedelta(seconds=1)
    deliver_due(session_factory, limited, now=t, batch=1)
    assert api.get("/v1/webhook-endpoints/wh_1").json()["status"] == "enabled"
    deliver_due(session_factory, limited, now=t, batch=1)
    ep = api.get("/v1/webhook-endpoints/wh_1").json()
    assert ep["status"] == "disabled" and "2 failed attempts" in ep["disabled_reason"]
    assert deliver_due(session_factory, limited, now=t + timedelta(hours=1)) == (0, 0)  # nothing while disabled
    _emit(session_factory)  # still recorded while disabled: nothing is lost
    outbox.drain(session_factory)
    assert len(_deliveries(api)) == 4
    ep = api.patch("/v1/webhook-endpoints/wh_1", json={"status": "enabled"}).json()
    assert ep["status"] == "enabled" and ep["consecutive_failures"] == 0 and ep["disabled_reason"] is None
    # The endpoint's queue stops at its first failure (the last 500); the rest go next time.
    assert deliver_due(session_factory, limited, now=datetime.now(UTC) + timedelta(seconds=1)) == (0, 1)
    assert deliver_due(session_factory, limited, now=datetime.now(UTC) + timedelta(seconds=1)) == (3, 0)
    receiver.statuses = []
    assert deliver_due(session_factory, limited, now=datetime.now(UTC) + timedelta(hours=1)) == (1, 0)
    assert {d["status"] for d in _deliveries(api)} == {"delivered"}
    body_types = {json.loads(r.body)["type"] for r in receiver.received}
    assert body_types == {"invoice.paid"}


def test_settings_are_pydantic(settings: Settings) -> None:
    assert settings.webhook_allow_private_urls is True
