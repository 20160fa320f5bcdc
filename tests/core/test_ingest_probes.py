"""Ingestion robustness found by probing: property names that are SQL keywords, and overlapping
batches sent concurrently in different orders."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import LiveServer

JAN = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}


def _usage(api, key: str, **params: str) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    r = api.get(f"/v1/meters/{key}/usage", params={"customer": "acme", **JAN, **params})
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["null", "NULL", "Null", "true", "select", "NaN"])
def test_a_property_named_like_a_keyword_aggregates(api, name: str) -> None:  # type: ignore[no-untyped-def]
    events = [
        {"id": f"e{i}", "customer": "acme", "type": "call", "timestamp": "2026-01-05T10:00:00Z",
         "properties": {name: i, "nested": {name: "x" if i % 2 else "y"}}}
        for i in range(1, 5)
    ]  # fmt: skip
    assert api.post("/v1/events", json={"events": events}).status_code == 202
    meter = {
        "key": "m",
        "event_type": "call",
        "aggregation": "sum",
        "value_property": name,
        "group_by": [f"nested.{name}"],
    }
    assert api.post("/v1/meters", json=meter).status_code == 201, name
    assert _usage(api, "m")[0]["value"] == "10"
    filtered = {
        "key": "f", "event_type": "call", "aggregation": "sum", "value_property": name,
        "filters": [{"property": f"nested.{name}", "op": "eq", "value": "x"}], "group_by": [],
    }  # fmt: skip
    assert api.post("/v1/meters", json=filtered).status_code == 201
    assert _usage(api, "f")[0]["value"] == "4"  # events 1 and 3
    rows = _usage(api, "m", group_by=f"nested.{name}")
    assert [(r["groups"][f"nested.{name}"], r["value"]) for r in rows] == [("x", "4"), ("y", "6")]


@pytest.mark.e2e
def test_overlapping_batches_in_different_orders_never_fail(live_server: LiveServer) -> None:
    """8 senders, each sending batches that overlap the others' in its own random order."""
    key = live_server.key("ingest")
    headers = {"Authorization": f"Bearer {key}"}
    pool_ids = [f"ov-{i:04d}" for i in range(600)]

    def sender(seed: int) -> list[tuple[int, int, int]]:
        rnd = random.Random(seed)
        out = []
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
            for _ in range(6):
                ids = rnd.sample(pool_ids, 300)
                batch = [{"id": i, "customer": "acme", "type": "call", "properties": {"n": 1}} for i in ids]
                r = client.post("/v1/events", json={"events": batch})
                body = r.json()
                out.append((r.status_code, body.get("accepted", 0), body.get("duplicates", 0)))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [x for xs in pool.map(sender, range(8)) for x in xs]
    assert {status for status, _, _ in results} == {202}
    assert all(acc + dup == 300 for _, acc, dup in results)
    sent = {i for seed in range(8) for i in _ids_sent(seed, pool_ids)}
    assert sum(acc for _, acc, _ in results) == len(sent)


def _ids_sent(seed: int, pool_ids: list[str]) -> set[str]:
    rnd = random.Random(seed)
    return {i for _ in range(6) for i in rnd.sample(pool_ids, 300)}
