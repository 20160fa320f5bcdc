"""Through a real `tollway serve`: a batch of events crossing two plan-notification thresholds
sends their `alert.triggered` webhooks (lowest first) and e-mails within 15 s of the 202."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook

from tests.conftest import free_port, start_server
from tests.notification.conftest import Receiver, settle

from .conftest import SECRET_KEY
from .test_email import Inbox


def test_alert_webhook_and_email_within_15_seconds(db_url: str) -> None:
    receiver = Receiver(port=free_port())
    receiver.start()
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {
        "TOLLWAY_SECRET_KEY": SECRET_KEY,
        "TOLLWAY_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "TOLLWAY_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "TOLLWAY_SMTP_FROM": "alerts@weather.example.com",
    }
    server = start_server(db_url, extra_env=env)
    try:
        key = server.key("admin")
        c = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert c.post("/v1/meters", json={"key": "api_calls", "event_type": "api_call", "aggregation": "count",
                                          "name": "API calls"}).status_code == 201  # fmt: skip
        plan = {"code": "pro", "name": "Pro", "currency": "USD",
                "charges": [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.01"}],
                "notifications": {"meter": "api_calls", "target": 100, "thresholds": [50, 100, 150]}}  # fmt: skip
        settle(c, "/v1/meters/api_calls")
        assert c.post("/v1/plans", json=plan).status_code == 201
        settle(c, "/v1/plans/pro")
        assert c.post("/v1/plans/pro/publish").status_code == 200
        settle(c, "/v1/plans/pro", lambda p: p["status"] == "published")
        assert c.post("/v1/customers", json={"id": "acme", "email": "ops@acme.example.com"}).status_code == 201
        settle(c, "/v1/customers/acme")
        start = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        overrides = {"notification_target": 10}
        sub = {"id": "sub_1", "customer": "acme", "plan": "pro", "start": start, "overrides": overrides}
        assert c.post("/v1/subscriptions", json=sub).status_code == 201
        settle(c, "/v1/subscriptions/sub_1")
        r = c.post("/v1/webhook-endpoints", json={"id": "wh", "url": receiver.url, "event_types": ["alert.triggered"]})
        secret = r.json()["secret"]
        settle(c, "/v1/webhook-endpoints/wh")

        now = datetime.now(UTC).isoformat()
        batch = [{"id": f"e{i}", "customer": "acme", "type": "api_call", "timestamp": now} for i in range(12)]
        r = c.post("/v1/events", json={"events": batch})
        assert r.status_code == 202
        accepted = time.monotonic()
        received = receiver.wait_for(2, timeout=15)
        elapsed = time.monotonic() - accepted
        assert elapsed <= 15, elapsed
        data = [Webhook(secret).verify(x.body, x.headers)["data"] for x in received]
        fired = [(d["threshold"], d["threshold_value"], d["value"]) for d in data]
        assert fired == [("50", "5", "12"), ("100", "10", "12")]
        deadline = time.monotonic() + 15
        while len(inbox.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(str(m["Subject"]).strip() for m in inbox.messages) == [
            "Usage alert: Your API calls usage has reached 100% of your plan's target",
            "Usage alert: Your API calls usage has reached 50% of your plan's target",
        ]
        assert {m["To"] for m in inbox.messages} == {"ops@acme.example.com"}
        events = c.get("/v1/alert-events?customer=acme").json()["data"]
        assert [e["threshold"] for e in events] == ["50", "100"]
        time.sleep(1)
        assert len(receiver.received) == 2  # each fired once
    finally:
        server.process.terminate()
        server.process.wait(timeout=15)
        controller.stop()
        receiver.stop()
