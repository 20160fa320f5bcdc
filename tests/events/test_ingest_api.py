from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from tollway.models import Event


def ev(i: int | str, **kw):
    base = {
        "id": f"evt_{i}",
        "customer": "acme",
        "type": "api_call",
        "timestamp": "2026-01-05T10:00:00Z",
        "properties": {"endpoint": "/v1/forecast", "status": 200},
    }
    return base | kw


def count_events(session_factory) -> int:
    with session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(Event)) or 0)


def test_single_event(api, session_factory):
    r = api.post("/v1/events", json=ev(1))
    assert r.status_code == 202
    assert r.json() == {"accepted": 1, "duplicates": 0, "errors": []}
    stored = api.get("/v1/events/evt_1").json()
    assert stored["timestamp"] == "2026-01-05T10:00:00Z"
    assert stored["properties"] == {"endpoint": "/v1/forecast", "status": 200}
    assert stored["voided_at"] is None
    ingested = datetime.fromisoformat(stored["ingested_at"])
    assert abs(ingested - datetime.now(UTC)) < timedelta(minutes=1)


def test_batch_with_mixed_valid_and_invalid_events_keeps_the_valid(api, session_factory):
    batch = [
        ev(1),
        ev(2, timestamp="2026-01-05 10:00"),  # not RFC 3339
        ev(3, properties=["not", "an", "object"]),
        {"id": "evt_4", "type": "api_call"},  # missing customer
        ev(5, customer=42),  # wrong type
        ev(6),
        "not an object",
    ]
    r = api.post("/v1/events", json={"events": batch})
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    errors = {e["index"]: e for e in body["errors"]}
    assert set(errors) == {1, 2, 3, 4, 6}
    assert errors[1]["field"] == "events[1].timestamp" and errors[1]["id"] == "evt_2"
    assert errors[2]["field"] == "events[2].properties"
    assert errors[3]["field"] == "events[3].customer" and "required" in errors[3]["message"]
    assert errors[4]["field"] == "events[4].customer" and "string" in errors[4]["message"]
    assert errors[6]["field"] == "events[6]"
    assert count_events(session_factory) == 2


def test_duplicates_are_counted_not_stored_twice(api, session_factory):
    assert api.post("/v1/events", json={"events": [ev(1), ev(2)]}).json()["accepted"] == 2
    r = api.post("/v1/events", json={"events": [ev(1), ev(2), ev(3), ev(3)]}).json()
    assert r == {"accepted": 1, "duplicates": 3, "errors": []}
    changed = api.post("/v1/events", json=ev(1, properties={"status": 500})).json()
    assert changed["duplicates"] == 1
    assert api.get("/v1/events/evt_1").json()["properties"]["status"] == 200  # first write wins
    assert count_events(session_factory) == 3


def test_timestamp_defaults_to_server_time(api):
    e = ev(1)
    del e["timestamp"]
    assert api.post("/v1/events", json=e).status_code == 202
    ts = datetime.fromisoformat(api.get("/v1/events/evt_1").json()["timestamp"])
    assert abs(ts - datetime.now(UTC)) < timedelta(minutes=1)


def test_events_for_unknown_customers_are_kept(api):
    assert api.post("/v1/events", json=ev(1, customer="not-yet-a-customer")).json()["accepted"] == 1
    assert api.get("/v1/events/evt_1").json()["customer"] == "not-yet-a-customer"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"customer": "acme", "type": "t"}, "id"),
        ({"id": "", "customer": "acme", "type": "t"}, "id"),
        ({"id": "x" * 201, "customer": "acme", "type": "t"}, "id"),
        ({"id": 7, "customer": "acme", "type": "t"}, "id"),
        ({"id": "a", "type": "t"}, "customer"),
        ({"id": "a", "customer": "acme"}, "type"),
        ({"id": "a", "customer": "acme", "type": "t", "timestamp": "2026-01-05T10:00:00"}, "timestamp"),
        ({"id": "a", "customer": "acme", "type": "t", "timestamp": 1767607200}, "timestamp"),
        ({"id": "a", "customer": "acme", "type": "t", "properties": "x"}, "properties"),
        ({"id": "a", "customer": "acme", "type": "t", "properties": {"k": "nul\u0000"}}, "properties"),
        ({"id": "a\u0000b", "customer": "acme", "type": "t"}, "id"),
    ],
)
def test_invalid_single_event_is_422_naming_the_field(api, event, field):
    r = api.post("/v1/events", json=event)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == field


def test_all_invalid_batch_is_422_with_indexed_fields(api):
    r = api.post("/v1/events", json={"events": [{"id": "a"}, ev(2, timestamp="nope")]})
    assert r.status_code == 422
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["events[0].customer", "events[1].timestamp"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"events": {"id": 1}}', "events"),
        (b"", "body"),
    ],
)
def test_malformed_bodies(api, body, field):
    r = api.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == field


def test_more_than_1000_events_is_413(api, session_factory):
    r = api.post("/v1/events", json={"events": [ev(i) for i in range(1001)]})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert count_events(session_factory) == 0
    assert api.post("/v1/events", json={"events": [ev(i) for i in range(1000)]}).json()["accepted"] == 1000


def test_more_than_1_mib_is_413_also_after_gzip(api):
    big = {"events": [ev(i, properties={"pad": "x" * 2000}) for i in range(600)]}
    raw = json.dumps(big).encode()
    assert len(raw) > 1024 * 1024
    assert api.post("/v1/events", content=raw, headers={"content-type": "application/json"}).status_code == 413
    packed = gzip.compress(raw)
    assert len(packed) < 1024 * 1024
    r = api.post("/v1/events", content=packed, headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 413


def test_gzip_body_is_accepted(api):
    raw = json.dumps({"events": [ev(i) for i in range(10)]}).encode()
    r = api.post(
        "/v1/events",
        content=gzip.compress(raw),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 202 and r.json()["accepted"] == 10
    bad = api.post("/v1/events", content=b"not gzip", headers={"content-encoding": "gzip"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body"
    br = api.post("/v1/events", content=raw, headers={"content-encoding": "br"})
    assert br.status_code == 415


def cloudevent(i: int, **kw):
    return {
        "specversion": "1.0",
        "id": f"ce_{i}",
        "source": "/gateway",
        "type": "api_call",
        "subject": "acme",
        "time": "2026-01-05T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"endpoint": "/v1/maps", "status": 201},
    } | kw


def test_cloudevents_structured_and_batch(api):
    r = api.post(
        "/v1/events",
        content=json.dumps(cloudevent(1)),
        headers={"content-type": "application/cloudevents+json; charset=utf-8"},
    )
    assert r.status_code == 202 and r.json()["accepted"] == 1
    stored = api.get("/v1/events/ce_1").json()
    assert stored["customer"] == "acme" and stored["properties"]["endpoint"] == "/v1/maps"
    assert stored["timestamp"] == "2026-01-05T10:00:00Z"
    batch = [cloudevent(2), cloudevent(3, subject=None), cloudevent(1), cloudevent(4, specversion="0.3")]
    r = api.post(
        "/v1/events", content=json.dumps(batch), headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 1 and body["duplicates"] == 1
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "[1].subject"), (3, "[3].specversion")]
    not_array = api.post("/v1/events", content=b"{}", headers={"content-type": "application/cloudevents-batch+json"})
    assert not_array.status_code == 422


def test_concurrent_retries_of_the_same_batch_store_each_event_once(live_server, ingest_key_for_live):
    """Eight clients send the same batch at the same moment through the real server."""
    batch = {"events": [ev(i) for i in range(300)]}
    headers = {"Authorization": f"Bearer {ingest_key_for_live}"}

    def send(_: int) -> dict:
        r = httpx.post(f"{live_server.url}/v1/events", json=batch, headers=headers, timeout=60)
        assert r.status_code == 202, r.text
        return r.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    assert sum(r["accepted"] for r in results) == 300
    assert all(r["accepted"] + r["duplicates"] == 300 for r in results)
    assert sum(r["duplicates"] for r in results) == 300 * 7


@pytest.fixture
def ingest_key_for_live(live_server) -> str:
    return live_server.key("ingest")
