"""Customers: time zone names that are not zone files (a directory, an over-long name) were 500s."""

from __future__ import annotations

import pytest

from tests.factories import problem

BAD_ZONES = ["America", "Etc", "x" * 300, "é" * 201, "Europe/Rome/", "../UTC"]


@pytest.mark.parametrize("tz", BAD_ZONES)
def test_create_with_a_zone_that_is_not_a_zone(api, tz):
    problem(api.post("/v1/customers", json={"id": "acme", "timezone": tz}), 422, "timezone")


@pytest.mark.parametrize("tz", BAD_ZONES)
def test_patch_with_a_zone_that_is_not_a_zone(api, tz):
    assert api.post("/v1/customers", json={"id": "acme", "timezone": "Europe/Rome"}).status_code == 201
    problem(api.patch("/v1/customers/acme", json={"timezone": tz}), 422, "timezone")
    assert api.get("/v1/customers/acme").json()["timezone"] == "Europe/Rome"


@pytest.mark.parametrize("tz", BAD_ZONES)
def test_usage_with_a_zone_that_is_not_a_zone(api, tz):
    body = {"key": "calls", "event_type": "api_call", "aggregation": "count"}
    assert api.post("/v1/meters", json=body).status_code == 201
    problem(api.get("/v1/meters/calls/usage", params={"tz": tz}), 422, "tz")


def test_long_ids_and_unicode_in_paths_are_404(api):
    for cid in ("x" * 201, "x" * 5000, "é", "\U0001f4a5", "a b"):
        problem(api.get(f"/v1/customers/{cid}"), 404)
        problem(api.patch(f"/v1/customers/{cid}", json={"name": "x"}), 404)
    problem(api.post("/v1/customers", json={"id": "x" * 201}), 422, "id")
