"""GET /v1/events: stored events newest first, filters, keyset cursor, unknown customers."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import make_key


def ev(id: str, customer: str, ts: str, type: str = "api_call") -> dict[str, Any]:
    return {"id": id, "customer": customer, "type": type, "timestamp": ts, "properties": {"n": 1}}


def send(api: Any, events: list[dict[str, Any]]) -> None:
    r = api.post("/v1/events", json={"events": events})
    assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text


def collect(api: Any, limit: int, **params: Any) -> list[str]:
    """Every page, following the cursor; each event must appear exactly once."""
    ids: list[str] = []
    after = None
    for _ in range(200):
        r = api.get("/v1/events", params={**params, "limit": limit, **({"after": after} if after else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["data"]) <= limit
        ids += [e["id"] for e in body["data"]]
        after = body["next"]
        if after is None:
            break
    return ids


SAME = "2026-01-05T10:00:00Z"
EVENTS = [
    ev("e1", "acme", "2026-01-05T09:00:00Z"),
    ev("e2", "acme", "2026-01-05T11:00:00Z", type="storage"),
    ev("e3", "acme", SAME, type="storage"),
    ev("B", "acme", SAME),
    ev("a", "acme", SAME, type="email"),
    ev("Z", "acme", SAME, type="storage"),
    ev("\u00e9", "acme", SAME),  # é sorts after every ASCII id
    ev("g1", "ghost", "2026-01-05T10:30:00Z"),
    ev("g2", "ghost", "2026-01-06T00:00:00Z", type="email"),
    ev("b1", "beta", "2026-01-04T00:00:00Z"),
]
# Newest first; equal timestamps by id descending in code-point (byte) order on every backend.
NEWEST_FIRST = ["g2", "e2", "g1", "\u00e9", "e3", "a", "Z", "B", "e1", "b1"]


@pytest.fixture
def stored(api):
    for customer in ("acme", "beta"):
        assert api.post("/v1/customers", json={"id": customer}).status_code == 201
    send(api, EVENTS)
    return api


def test_newest_first_with_ties_broken_by_id(stored):
    body = stored.get("/v1/events").json()
    assert [e["id"] for e in body["data"]] == NEWEST_FIRST and body["next"] is None
    first = body["data"][0]
    assert set(first) >= {"id", "customer", "type", "timestamp", "ingested_at", "properties", "voided_at"}
    assert first["customer_exists"] is False and body["data"][1]["customer_exists"] is True


@pytest.mark.parametrize("limit", [1, 2, 3, 500])
def test_the_cursor_visits_every_event_once(stored, limit):
    assert collect(stored, limit) == NEWEST_FIRST


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"customer": "acme"}, [i for i in NEWEST_FIRST if i in {"e1", "e2", "e3", "B", "a", "Z", "\u00e9"}]),
        ({"customer": "acme", "type": "storage"}, ["e2", "e3", "Z"]),
        ({"type": "email"}, ["g2", "a"]),
        ({"from": SAME, "to": "2026-01-05T11:00:00Z"}, ["g1", "\u00e9", "e3", "a", "Z", "B"]),
        ({"customer": "acme", "from": "2026-01-05T10:00:00+00:00", "to": "2026-01-05T10:00:00.000001Z"},
         ["\u00e9", "e3", "a", "Z", "B"]),
        ({"customer": "nobody"}, []),
        ({"type": "nothing"}, []),
    ],
)  # fmt: skip
def test_filters_on_every_page_size(stored, params, expected):
    for limit in (1, 2, 50):
        assert collect(stored, limit, **params) == expected, (params, limit)


def test_unknown_customers_are_flagged_and_counted(stored):
    body = stored.get("/v1/events").json()
    assert body["unknown_customers"] == {"customers": ["ghost"], "events": 2}
    assert body["customer_exists"] is None
    assert [e["customer_exists"] for e in body["data"]] == [e["customer"] != "ghost" for e in body["data"]]
    ghost = stored.get("/v1/events", params={"customer": "ghost"}).json()
    assert ghost["customer_exists"] is False and len(ghost["data"]) == 2
    assert stored.get("/v1/events", params={"customer": "acme"}).json()["customer_exists"] is True
    # ...and the customer view says what arrived under an id nobody created
    r = stored.get("/v1/customers/ghost")
    assert r.status_code == 404 and "2 events were received for this id" in r.json()["detail"]
    r = stored.get("/v1/customers/nobody")
    assert r.status_code == 404 and "events" not in r.json()["detail"]
    # once the customer exists, its events are no longer flagged
    assert stored.post("/v1/customers", json={"id": "ghost"}).status_code == 201
    assert stored.get("/v1/events").json()["unknown_customers"] == {"customers": [], "events": 0}


def test_voided_events_are_listed_as_void(stored):
    assert stored.post("/v1/events/e1/void").status_code == 200
    [e1] = [e for e in stored.get("/v1/events").json()["data"] if e["id"] == "e1"]
    assert e1["voided_at"] is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "not-a-cursor!"}, "after"),
        ({"after": "bm90IGpzb24"}, "after"),  # base64 of "not json": ours is a JSON pair
        ({"after": "WyJub3QgYSB0aW1lIiwiZSJd"}, "after"),  # ["not a time","e"]
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-01-05T10:00:00"}, "to"),  # no offset
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
    ],
)
def test_bad_parameters_are_a_422_naming_them(stored, params, field):
    r = stored.get("/v1/events", params=params)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


def test_listing_events_needs_an_admin_key(app, anon):
    ingest = make_key(app, "ingest")
    assert anon.get("/v1/events").status_code == 401
    assert anon.get("/v1/events", headers={"Authorization": f"Bearer {ingest}"}).status_code == 403


def test_events_list_through_a_real_server(live_server):
    key = live_server.key("admin")
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        assert api.post("/v1/customers", json={"id": "acme"}).status_code == 201
        send(api, EVENTS)
        ids: list[str] = []
        for _ in range(50):  # a 202 means stored: the list shows them (allow the commit a moment)
            ids = collect(api, 3)
            if len(ids) == len(EVENTS):
                break
            time.sleep(0.05)
        assert ids == NEWEST_FIRST
        body = api.get("/v1/events", params={"customer": "ghost"}).json()
        assert body["customer_exists"] is False and [e["id"] for e in body["data"]] == ["g2", "g1"]
