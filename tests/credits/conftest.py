"""Fixtures and factories for the prepaid-credit tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import create_customer, create_meter, create_plan

PER_CALL = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}]
"""0.50 per call: 100 calls = 50.00."""


def grant(api: TestClient, customer: str, *, id: str, amount: str, expect: int = 201, **fields: Any) -> dict[str, Any]:
    r = api.post(f"/v1/customers/{customer}/credit-grants", json={"id": id, "amount": amount, **fields})
    assert r.status_code == expect, r.text
    return dict(r.json())


def credits(api: TestClient, customer: str, at: str | None = None) -> dict[str, Any]:
    r = api.get(f"/v1/customers/{customer}/credits", params={"at": at} if at else {})
    assert r.status_code == 200, r.text
    return dict(r.json())


def ledger(api: TestClient, customer: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = None
    while True:
        r = api.get(
            f"/v1/customers/{customer}/credit-ledger", params={"limit": 2, **({"after": after} if after else {})}
        )
        assert r.status_code == 200, r.text
        entries += r.json()["data"]
        after = r.json()["next"]
        if after is None:
            return entries


def replay(entries: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(e["amount"]) for e in entries), Decimal(0))


@pytest.fixture
def per_call_plan(api: TestClient) -> str:
    """A published USD plan charging 0.50 per ``api_call`` event (meter ``api_calls``)."""
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="pay", charges=PER_CALL, publish=True)
    return "pay"


@pytest.fixture
def acme(api: TestClient) -> str:
    create_customer(api, id="acme", currency="USD")
    return "acme"
