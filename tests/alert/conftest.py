"""Alert fixtures: a customer on a monthly plan with notifications, through the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import create_customer, create_meter, create_plan, subscribe
from tollway.config import Settings

SECRET_KEY = "test-secret-key-0123456789abcdef-0123456789"
PERIOD_START = "2026-11-01T00:00:00Z"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url, run_worker_in_serve=False, secret_key=SECRET_KEY, webhook_allow_private_urls=True
    )


def now_in_period() -> datetime:
    """A moment of the current (November 2026) billing period the tests evaluate at."""
    return datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def setup_plan(api: TestClient, *, notification_target: int | None = None, **plan: Any) -> None:
    create_meter(api, key="api_calls", event_type="api_call")
    api.patch("/v1/meters/api_calls", json={"name": "API calls"})
    fields: dict[str, Any] = {
        "notifications": {"meter": "api_calls", "target": 100, "thresholds": [50, 100, 150]},
        "charges": [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}],
    }
    fields.update(plan)
    create_plan(api, code="pro", publish=True, **fields)
    create_customer(api, id="acme", email="ops@acme.example.com", name="Acme", timezone="Europe/Rome")
    overrides = {"notification_target": notification_target} if notification_target is not None else {}
    subscribe(api, id="sub_1", customer="acme", plan="pro", start=PERIOD_START, overrides=overrides)


def events(api: TestClient, n: int, *, customer: str = "acme", start: int = 0, day: str = "2026-11-20") -> None:
    batch = [
        {"id": f"e-{customer}-{day}-{start + i}", "customer": customer, "type": "api_call",
         "timestamp": f"{day}T10:{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}Z"}
        for i in range(n)
    ]  # fmt: skip
    r = api.post("/v1/events", json={"events": batch})
    assert r.status_code == 202 and r.json()["accepted"] == n, r.text
