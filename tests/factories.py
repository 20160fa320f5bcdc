"""Small keyword-only factories for tests, all through the HTTP API, and the problem+json
assertions. One of each: no defaults that differ between areas (a plan is published only when
``publish=True`` says so; its charges are the ones given).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

JSON = {"content-type": "application/json"}

# Amberflo docs, "Pricing and Rating" (docs.amberflo.io/docs/pricing-and-rating), "Per block":
# the first 5,000 calls free, then $5 per block of 1,000 calls; 12,345 calls bill $40.
AMBERFLO_CHARGE: dict[str, Any] = {
    "code": "calls",
    "meter": "api_calls",
    "model": "package",
    "package_size": 1000,
    "package_price": "5.00",
    "free_units": 5000,
}


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


def create_product(api: TestClient, *, code: str, name: str | None = None) -> dict[str, Any]:
    r = api.post("/v1/products", json={"code": code, "name": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


def create_bundle(api: TestClient, *, code: str, products: list[str]) -> dict[str, Any]:
    r = api.post("/v1/bundles", json={"code": code, "products": products})
    assert r.status_code == 201, r.text
    return dict(r.json())


def plan_body(*, code: str, charges: Sequence[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A plan body in USD named after its code, fields overridden."""
    body: dict[str, Any] = {"code": code, "name": code.title(), "currency": "USD", "charges": list(charges)}
    body.update(fields)
    return copy.deepcopy(body)


def create_plan(
    api: TestClient, *, code: str, charges: Sequence[dict[str, Any]], publish: bool, **fields: Any
) -> dict[str, Any]:
    r = api.post("/v1/plans", json=plan_body(code=code, charges=charges, **fields))
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
    """Send ``events`` in batches of 1,000, all accepted; returns how many were stored."""
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


def problem(r: Response, status: int, field: str | None = None) -> dict[str, Any]:
    """Assert ``r`` is an RFC 9457 problem with ``status`` (whose errors name ``field``, if
    given); return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if field is not None:
        fields = [e["field"] for e in body["errors"]]
        assert field in fields, body
    return body


def problem_fields(r: Response, status: int) -> dict[str, str]:
    """Assert ``r`` is an RFC 9457 problem with ``status``; return its errors as {field: message}."""
    return {e["field"]: e["message"] for e in problem(r, status)["errors"]}


def nested(depth: int, leaf: str = "1") -> str:
    """A JSON object nested ``depth`` levels deep: {"a":{"a":...1}}."""
    return '{"a":' * depth + leaf + "}" * depth
