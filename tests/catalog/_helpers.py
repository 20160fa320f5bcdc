"""Small keyword-only factories for catalog tests, all through the HTTP API."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

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


def create_meter(
    api: TestClient,
    *,
    key: str = "api_calls",
    event_type: str = "api_call",
    aggregation: str = "count",
    value_property: str | None = None,
    group_by: list[str] | None = None,
) -> dict[str, Any]:
    body = {
        "key": key,
        "event_type": event_type,
        "aggregation": aggregation,
        "value_property": value_property,
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


def plan_body(*, code: str = "starter", **fields: Any) -> dict[str, Any]:
    """A valid plan body (one Amberflo package charge on ``api_calls``), fields overridden."""
    body: dict[str, Any] = {"code": code, "name": code.title(), "currency": "USD", "charges": [AMBERFLO_CHARGE]}
    body.update(fields)
    return copy.deepcopy(body)


def create_plan(api: TestClient, *, code: str = "starter", publish: bool = False, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/plans", json=plan_body(code=code, **fields))
    assert r.status_code == 201, r.text
    if publish:
        r = api.post(f"/v1/plans/{code}/publish")
        assert r.status_code == 200, r.text
    return dict(r.json())


def problem(r: Response, status: int) -> dict[str, str]:
    """Assert a problem+json response with ``status``; return its errors as {field: message}."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    return {e["field"]: e["message"] for e in body["errors"]}
