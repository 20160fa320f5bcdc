"""Through a real `tollway serve`: a receiver that is down, then answers 500, then 200, loses
nothing; and a server refuses to start with endpoints configured and no TOLLWAY_SECRET_KEY."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from standardwebhooks.webhooks import Webhook

from tests.conftest import free_port, start_server
from tollway.config import Settings

from .conftest import SECRET_KEY, Receiver, settle

LIVE_ENV = {
    "TOLLWAY_SECRET_KEY": SECRET_KEY,
    "TOLLWAY_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    "TOLLWAY_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
}


def _wait(predicate, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_receiver_down_then_failing_then_up_loses_nothing(db_url: str, settings: Settings) -> None:
    server = start_server(db_url, extra_env=LIVE_ENV)
    receiver = Receiver(port=free_port(), statuses=[500])
    try:
        key = server.key("admin")
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        r = client.post("/v1/webhook-endpoints", json={"id": "wh", "url": receiver.url})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        assert client.post("/v1/customers", json={"id": "acme", "email": "ops@acme.example.com"}).status_code == 201
        settle(client, "/v1/customers/acme")
        fees = {"recurring": {"amount": "10.00", "in_advance": True, "prorate": False}}
        plan = {"code": "basic", "name": "Basic", "currency": "USD", "charges": [], "fees": fees}
        assert client.post("/v1/plans", json=plan).status_code == 201
        settle(client, "/v1/plans/basic")
        assert client.post("/v1/plans/basic/publish").status_code == 200
        settle(client, "/v1/plans/basic", lambda p: p["status"] == "published")
        sub = {"id": "sub_1", "customer": "acme", "plan": "basic", "start": "2026-01-01T00:00:00Z"}
        assert client.post("/v1/subscriptions", json=sub).status_code == 201

        def first_failure():  # type: ignore[no-untyped-def]
            rows = client.get("/v1/webhook-endpoints/wh/deliveries").json()["data"]
            return rows if rows and rows[0]["attempts"] >= 1 else None

        (d,) = _wait(first_failure)
        assert d["status"] == "pending" and "ConnectError" in d["last_error"]  # down: kept, retried
        receiver.start()  # up (the automatic retry comes 5 s later), but the first answer is a 500

        def answered_500():  # type: ignore[no-untyped-def]
            rows = client.get("/v1/webhook-endpoints/wh/deliveries").json()["data"]
            return rows if rows[0]["last_status_code"] == 500 else None

        (d,) = _wait(answered_500)
        assert d["status"] == "pending" and d["attempts"] == 2  # next automatic retry in 5 minutes
        assert client.post(f"/v1/webhook-deliveries/{d['id']}/retry").status_code == 200  # now
        received = receiver.wait_for(2, timeout=30)
        ids = {x.headers["webhook-id"] for x in received}
        assert len(ids) == 1
        payload = Webhook(secret).verify(received[-1].body, received[-1].headers)
        assert payload["type"] == "subscription.created" and payload["data"]["id"] == "sub_1"

        def delivered():  # type: ignore[no-untyped-def]
            rows = client.get("/v1/webhook-endpoints/wh/deliveries").json()["data"]
            return rows if rows[0]["status"] == "delivered" else None

        (d,) = _wait(delivered)
        assert d["attempts"] == 3 and d["last_status_code"] == 200
    finally:
        receiver.stop()
        server.process.terminate()
        server.process.wait(timeout=15)

    # Endpoints exist: without the key, neither serve nor worker starts.
    env = {k: v for k, v in server.env.items() if k != "TOLLWAY_SECRET_KEY"}
    out = subprocess.run(
        [sys.executable, "-m", "tollway", "worker", "--once"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert "webhook endpoints are configured" in out.stderr and "TOLLWAY_SECRET_KEY is not set" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "tollway", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "TOLLWAY_SECRET_KEY" in out.stderr
