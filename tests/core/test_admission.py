"""Admission before the body (auth.gate): refused requests cost no body reading, every API
route declares its access, admin bodies are bounded, the principal reaches the handler."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import make_key
from tollway.auth.gate import iter_access

BIG = [b"x" * 65536] * 16  # 1 MiB in 16 chunks


def test_every_api_route_declares_its_access(app) -> None:  # type: ignore[no-untyped-def]
    routes = [(path, methods, access) for path, methods, access in iter_access(app) if path.startswith("/v1/")]
    assert len(routes) > 20
    missing = [f"{sorted(m)} {p}" for p, m, a in routes if a is None]
    assert missing == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/customers", {}),
        ("/v1/customers", {"authorization": "Bearer tw_admin_not-a-key"}),
        ("/v1/events", {}),
        ("/v1/plans", {"authorization": "Basic YWRtaW46YWRtaW4="}),
    ],
)
def test_unauthenticated_request_is_refused_before_its_body_is_read(app, call, path, headers) -> None:  # type: ignore[no-untyped-def]
    r = call(app, "POST", path, headers={"content-type": "application/json", **headers}, chunks=BIG)
    assert r.status == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.body_reads == 0


def test_wrong_scope_is_refused_before_its_body_is_read(app, call) -> None:  # type: ignore[no-untyped-def]
    key = make_key(app, "ingest")
    r = call(app, "POST", "/v1/customers", headers={"authorization": f"Bearer {key}"}, chunks=BIG)
    assert r.status == 403
    assert r.body_reads == 0
    assert "ingest" in orjson.loads(r.body)["detail"]


def test_admin_body_over_the_limit_is_413_without_reading_it(app, call) -> None:  # type: ignore[no-untyped-def]
    key = make_key(app, "admin")
    r = call(app, "POST", "/v1/customers", headers={"authorization": f"Bearer {key}"}, chunks=[*BIG, b"{}"])
    assert r.status == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert orjson.loads(r.body)["status"] == 413
    assert r.body_reads == 0


def test_streamed_admin_body_over_the_limit_is_413_after_the_limit(app, call) -> None:  # type: ignore[no-untyped-def]
    key = make_key(app, "admin")
    chunks = [b"x" * 65536] * 40  # 2.5 MiB, no Content-Length (chunked upload)
    r = call(app, "POST", "/v1/plans", headers={"authorization": f"Bearer {key}"}, chunks=chunks, content_length=False)
    assert r.status == 413
    assert r.body_reads == 17  # stopped at the first chunk past 1 MiB, the rest never read


def test_admitted_request_reaches_the_handler_with_its_body(app, call) -> None:  # type: ignore[no-untyped-def]
    key = make_key(app, "admin")
    body = orjson.dumps({"id": "c-chunked", "name": "C", "currency": "USD"})
    r = call(
        app,
        "POST",
        "/v1/customers",
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        chunks=[body[:5], body[5:]],
        content_length=False,
    )
    assert r.status == 201, r.body
    assert orjson.loads(r.body)["id"] == "c-chunked"


def test_admission_hooks_run_after_authentication(app, anon) -> None:  # type: ignore[no-untyped-def]
    """The extension point for per-key rate limits: a hook sees the principal, may refuse."""
    from tollway.errors import TollwayError

    seen: list[str] = []

    async def limit(request, principal) -> None:  # type: ignore[no-untyped-def]
        seen.append(principal.subject)
        raise TollwayError("slow down", status=429, code="rate_limited")

    app.state.admission_hooks.append(limit)
    key = make_key(app, "admin")
    assert anon.get("/v1/customers").status_code == 401
    assert seen == []
    r = anon.get("/v1/customers", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 429
    assert seen == [seen[0]] and seen[0].startswith("key:key_")


def test_unknown_paths_and_health_need_no_key(anon) -> None:  # type: ignore[no-untyped-def]
    assert anon.get("/healthz").status_code == 200
    assert anon.post("/v1/nope", content=b"x" * 10).status_code == 404
