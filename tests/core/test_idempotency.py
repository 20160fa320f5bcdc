"""Idempotency-Key after admission: one creation per key, every concurrent caller gets its
answer, refused requests store nothing, failures are not stored, records expire."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.conftest import LiveServer, make_key
from tollway.kit.idempotency import ABANDONED_AFTER, RECORD_TTL
from tollway.kit.time import utcnow
from tollway.models import IdempotencyRecord
from tollway.worker import Worker


def _records(session_factory) -> int:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0)


def _age(session_factory, by: timedelta) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        session.execute(update(IdempotencyRecord).values(created_at=utcnow() - by))
        session.commit()


def test_retry_replays_and_another_body_conflicts(api) -> None:  # type: ignore[no-untyped-def]
    body = {"id": "c1", "name": "C", "currency": "USD"}
    first = api.post("/v1/customers", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    again = api.post("/v1/customers", json=body, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = api.post("/v1/customers", json={**body, "name": "D"}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 409 and other.json()["type"].endswith("idempotency_key_reused")


def test_refused_requests_store_nothing(app, anon, session_factory) -> None:  # type: ignore[no-untyped-def]
    body = {"id": "c1", "name": "C", "currency": "USD"}
    headers = {"Idempotency-Key": "k1"}
    assert anon.post("/v1/customers", json=body, headers=headers).status_code == 401
    ingest = {"Authorization": f"Bearer {make_key(app, 'ingest')}", **headers}
    assert anon.post("/v1/customers", json=body, headers=ingest).status_code == 403
    admin = {"Authorization": f"Bearer {make_key(app, 'admin')}", **headers}
    big = anon.post("/v1/customers", content=b"{" + b" " * (2 << 20) + b"}", headers=admin)
    assert big.status_code == 413
    assert _records(session_factory) == 0
    assert anon.post("/v1/customers", json=body, headers=admin).status_code == 201  # the key is still free


def test_a_failed_request_is_not_stored(api, session_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def failing_commit(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("simulated"))

    body = {"id": "c1", "name": "C", "currency": "USD"}
    with TestClient(api.app, headers=api.headers, raise_server_exceptions=False) as client:
        monkeypatch.setattr(Session, "commit", failing_commit)
        monkeypatch.setattr("tollway.kit.idempotency._store", lambda *a: pytest.fail("5xx stored"))
        assert client.post("/v1/customers", json=body, headers={"Idempotency-Key": "k1"}).status_code == 500
        monkeypatch.undo()
    assert _records(session_factory) == 0
    assert api.post("/v1/customers", json=body, headers={"Idempotency-Key": "k1"}).status_code == 201


def test_records_expire(api, app, session_factory) -> None:  # type: ignore[no-untyped-def]
    body = {"id": "c1", "name": "C", "currency": "USD"}
    assert api.post("/v1/customers", json=body, headers={"Idempotency-Key": "k1"}).status_code == 201
    _age(session_factory, RECORD_TTL - timedelta(minutes=1))
    worker = Worker(session_factory, app.state.settings)
    assert worker.housekeeping_step() == 0
    # An expired record no longer binds the key, even before the worker purges it.
    _age(session_factory, RECORD_TTL + timedelta(minutes=1))
    reused = api.post("/v1/customers", json={**body, "id": "c2"}, headers={"Idempotency-Key": "k1"})
    assert reused.status_code == 201 and reused.json()["id"] == "c2"
    _age(session_factory, RECORD_TTL + timedelta(minutes=1))
    assert worker.housekeeping_step() == 1
    assert _records(session_factory) == 0


def test_an_abandoned_claim_is_taken_over(api, session_factory) -> None:  # type: ignore[no-untyped-def]
    """A request that died (its process killed) after claiming the key does not block it forever."""
    body = {"id": "c1", "name": "C", "currency": "USD"}
    assert api.post("/v1/customers", json=body, headers={"Idempotency-Key": "k1"}).status_code == 201
    with session_factory() as session:  # turn the record back into a claim nobody will finish
        session.execute(update(IdempotencyRecord).values(status=0, body=b""))
        session.commit()
    _age(session_factory, ABANDONED_AFTER + timedelta(seconds=5))
    r = api.post("/v1/customers", json={**body, "id": "c2"}, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 201 and r.json()["id"] == "c2"


@pytest.mark.e2e
def test_concurrent_identical_requests_all_get_the_creation(live_server: LiveServer) -> None:
    key = live_server.key("admin")
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "same-key"}

    def send(i: int) -> httpx.Response:
        body = {"id": "conc", "name": "Concurrent", "currency": "USD", "metadata": {"n": 1}}
        return httpx.post(f"{live_server.url}/v1/customers", json=body, headers=headers, timeout=60)

    for round_ in range(3):
        if round_:
            headers["Idempotency-Key"] = f"same-key-{round_}"
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(8)))
        statuses = [a.status_code for a in answers]
        if round_ == 0:
            assert statuses == [201] * 8, [a.text for a in answers]
            assert len({a.content for a in answers}) == 1
            assert sum(a.headers.get("idempotent-replayed") != "true" for a in answers) == 1
        else:  # a new key for an existing id: every caller gets the one 409 of the attempt
            assert statuses == [409] * 8
            assert sum(a.headers.get("idempotent-replayed") != "true" for a in answers) == 1
    assert send(0).headers["idempotent-replayed"] == "true"
    assert httpx.get(f"{live_server.url}/v1/customers", headers=headers).json()["data"][0]["id"] == "conc"
