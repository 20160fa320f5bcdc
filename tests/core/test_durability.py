"""Durability: a 2xx is sent only after the request's transaction committed; a failed commit is
a 5xx. TestClient waits for dependency teardown, so the ordering is checked at the ASGI level
(the response start is observed against the commit) and through a real ``tollway serve``."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.conftest import LiveServer
from tollway.deps import get_session
from tollway.models import Customer


def _session_dependencies(dependant):  # type: ignore[no-untyped-def]
    for dep in dependant.dependencies:
        if dep.call is get_session:
            yield dep
        yield from _session_dependencies(dep)


def test_every_route_commits_before_responding(app) -> None:  # type: ignore[no-untyped-def]
    """Every route that takes the request's session takes it with scope="function" (closed before
    the response is sent); none reaches get_session another way."""
    with_session = 0
    for route in iter_route_contexts(app.routes):
        if getattr(route, "dependant", None) is None:
            continue
        deps = list(_session_dependencies(route.dependant))
        for dep in deps:
            assert dep.scope == "function", f"{route.methods} {route.path} takes a request-scoped session"
        with_session += bool(deps)
    assert with_session >= 20


def test_response_starts_after_commit(app, admin_key: str) -> None:  # type: ignore[no-untyped-def]
    order: list[str] = []

    @event.listens_for(Session, "after_commit")
    def _committed(session: Session) -> None:
        order.append("commit")

    inner = app.build_middleware_stack()

    async def recording_app(scope, receive, send):  # type: ignore[no-untyped-def]
        async def recording_send(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                order.append(f"response {message['status']}")
            await send(message)

        await inner(scope, receive, recording_send)

    app.build_middleware_stack = lambda: recording_app
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
            order.clear()
            r = client.post("/v1/customers", json={"id": "c1", "name": "C", "currency": "USD"})
            assert r.status_code == 201, r.text
    finally:
        event.remove(Session, "after_commit", _committed)
    assert order == ["commit", "response 201"]


def test_failed_commit_is_a_5xx(app, admin_key: str, session_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def failing_commit(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk full (simulated)"))

    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}, raise_server_exceptions=False) as client:
        monkeypatch.setattr(Session, "commit", failing_commit)
        r = client.post("/v1/customers", json={"id": "lost", "name": "Lost", "currency": "USD"})
        monkeypatch.undo()
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/problem+json"
        assert client.get("/v1/customers/lost").status_code == 404
    with session_factory() as session:
        assert session.get(Customer, "lost") is None


@pytest.mark.e2e
def test_create_then_read_never_misses_through_a_real_server(live_server: LiveServer) -> None:
    """Hundreds of create→read and update→read pairs from several clients at once: every read
    sees the write whose 2xx came before it."""
    key = live_server.key("admin")
    headers = {"Authorization": f"Bearer {key}"}

    def pair(i: int) -> list[str]:
        misses = []
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
            cid = f"dur-{i}"
            r = client.post("/v1/customers", json={"id": cid, "name": "n0", "currency": "USD"})
            assert r.status_code == 201, r.text
            if client.get(f"/v1/customers/{cid}").status_code != 200:
                misses.append(f"create {cid}")
            assert client.patch(f"/v1/customers/{cid}", json={"name": "n1"}).status_code == 200
            if client.get(f"/v1/customers/{cid}").json()["name"] != "n1":
                misses.append(f"update {cid}")
        return misses

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        misses = [m for ms in pool.map(pair, range(300)) for m in ms]
    assert misses == []
