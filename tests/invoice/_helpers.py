"""Keyword-only factories for billing tests, all through the HTTP API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.testclient import TestClient


def create_customer(api: TestClient, *, id: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/customers", json={"id": id, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


def create_meter(
    api: TestClient,
    *,
    key: str,
    event_type: str,
    aggregation: str = "count",
    value_property: str | None = None,
    filters: list[dict[str, Any]] | None = None,
    group_by: list[str] | None = None,
) -> dict[str, Any]:
    body = {
        "key": key,
        "event_type": event_type,
        "aggregation": aggregation,
        "value_property": value_property,
        "filters": filters or [],
        "group_by": group_by or [],
    }
    r = api.post("/v1/meters", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def create_plan(api: TestClient, *, code: str, publish: bool = True, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "name": code.title(), "currency": "USD", "charges": []}
    body.update(fields)
    r = api.post("/v1/plans", json=body)
    assert r.status_code == 201, r.text
    if publish:
        r = api.post(f"/v1/plans/{code}/publish")
        assert r.status_code == 200, r.text
    return dict(r.json())


def subscribe(api: TestClient, *, id: str, customer: str, plan: str, start: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/subscriptions", json={"id": id, "customer": customer, "plan": plan, "start": start, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


def send_events(api: TestClient, events: Iterable[dict[str, Any]]) -> int:
    batch: list[dict[str, Any]] = []
    accepted = 0

    def flush() -> None:
        nonlocal accepted
        if batch:
            r = api.post("/v1/events", json={"events": batch})
            assert r.status_code == 202, r.text
            assert r.json()["errors"] == [], r.text
            accepted += r.json()["accepted"]
            batch.clear()

    for event in events:
        batch.append(event)
        if len(batch) == 1000:
            flush()
    flush()
    return accepted


def calls(
    customer: str, n: int, *, day: str, prefix: str = "e", type: str = "api_call", **props: Any
) -> list[dict[str, Any]]:
    """``n`` events on ``day`` (YYYY-MM-DD), spread over the day's first hours."""
    return [
        {
            "id": f"{prefix}-{customer}-{day}-{i}",
            "customer": customer,
            "type": type,
            "timestamp": f"{day}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            "properties": dict(props),
        }
        for i in range(n)
    ]


def run_billing(api: TestClient, until: str) -> dict[str, Any]:
    r = api.post("/v1/billing/run", json={"until": until})
    assert r.status_code == 200, r.text
    return dict(r.json())


def invoices_of(api: TestClient, customer: str) -> list[dict[str, Any]]:
    r = api.get("/v1/invoices", params={"customer": customer, "limit": 500})
    assert r.status_code == 200, r.text
    return sorted(r.json()["data"], key=lambda i: i["period_start"])


def lines_of(invoice: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    return [line for line in invoice["lines"] if kind is None or line["kind"] == kind]
