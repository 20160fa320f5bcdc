from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from tollway_sdk import ResponseInfo, TollwayASGIMiddleware


def customer_header(request: Request) -> str | None:
    return request.headers.get("x-customer")


def build_app() -> FastAPI:
    app = FastAPI()

    def authenticate(request: Request) -> None:
        # What an auth dependency does: identify() later reads request.state.
        if request.headers.get("authorization") == "Bearer acme-token":
            request.state.customer = "acme"

    @app.get("/v1/users/{user_id}")
    def get_user(user_id: int) -> dict[str, object]:
        if user_id == 404:
            raise HTTPException(status_code=404, detail="no such user")
        return {"id": user_id, "name": "Ada"}

    @app.post("/v1/users", status_code=201)
    async def create_user(request: Request) -> dict[str, int]:
        body = await request.body()
        return {"received": len(body)}

    @app.get("/v1/me", dependencies=[Depends(authenticate)])
    def me() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/v1/stream")
    def stream() -> StreamingResponse:
        async def chunks():
            for i in range(5):
                await asyncio.sleep(0.02)
                yield f"chunk-{i}\n".encode() * 100

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("application bug")

    @app.get("/v1/units")
    def units() -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"x-units": "7"})

    router = APIRouter(prefix="/v2")

    @router.get("/orders/{order_id}")
    def order(order_id: str) -> dict[str, str]:
        return {"order": order_id}

    app.include_router(router)
    return app


class InProcess:
    """Drives an ASGI app in-process through httpx's ASGI transport."""

    def __init__(self, app, raise_server_exceptions: bool = True) -> None:
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=self.raise_server_exceptions)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)


def meter(app, client, **options):
    options.setdefault("identify", customer_header)
    app.add_middleware(TollwayASGIMiddleware, client=client, **options)
    return InProcess(app, raise_server_exceptions=False)


def sent_properties(server, client):
    assert client.flush(timeout=5)
    return [e["properties"] for e in server.events()]


def test_route_template_status_and_bytes(server, make_client):
    client = make_client()
    http = meter(build_app(), client)
    got = http.get("/v1/users/42", headers={"x-customer": "acme"})
    body = b'{"name":"Grace","email":"grace@example.com"}'
    created = http.post("/v1/users", content=body, headers={"x-customer": "acme", "content-type": "application/json"})
    assert got.status_code == 200 and created.status_code == 201
    first, second = sent_properties(server, client)
    assert first["method"] == "GET" and first["route"] == "/v1/users/{user_id}" and first["status"] == 200
    assert first["response_bytes"] == len(got.content) and first["request_bytes"] == 0
    assert first["duration_ms"] > 0
    assert second["route"] == "/v1/users" and second["status"] == 201 and second["method"] == "POST"
    assert second["request_bytes"] == len(body) and second["response_bytes"] == len(created.content)
    assert {e["customer"] for e in server.events()} == {"acme"}
    assert {e["type"] for e in server.events()} == {"api_call"}


def test_templates_through_routers_http_errors_and_unmatched_paths(server, make_client):
    client = make_client()
    http = meter(build_app(), client)
    assert http.get("/v2/orders/o-1", headers={"x-customer": "acme"}).status_code == 200
    assert http.get("/v1/users/404", headers={"x-customer": "acme"}).status_code == 404
    assert http.get("/nowhere/123", headers={"x-customer": "acme"}).status_code == 404
    props = sent_properties(server, client)
    assert [(p["route"], p["status"]) for p in props] == [
        ("/v2/orders/{order_id}", 200),
        ("/v1/users/{user_id}", 404),
        ("/nowhere/123", 404),  # no route matched: the raw path is all there is
    ]


def test_streaming_response_is_counted_in_full(server, make_client):
    client = make_client()
    http = meter(build_app(), client)
    response = http.get("/v1/stream", headers={"x-customer": "acme"})
    assert response.status_code == 200
    (props,) = sent_properties(server, client)
    assert props["response_bytes"] == len(response.content) == 5 * 800
    assert props["duration_ms"] >= 90  # five 20 ms pauses between chunks


def test_identify_can_read_state_set_during_the_request(server, make_client):
    client = make_client()
    http = meter(build_app(), client, identify=lambda request: getattr(request.state, "customer", None))
    http.get("/v1/me", headers={"authorization": "Bearer acme-token"})
    http.get("/v1/me")
    assert client.flush(timeout=5)
    assert [e["customer"] for e in server.events()] == ["acme"]
    assert client.stats.unidentified == 1


def test_unidentified_requests_are_counted_and_not_sent(server, make_client):
    client = make_client()
    http = meter(build_app(), client)
    for _ in range(3):
        assert http.get("/v1/users/1").status_code == 200
    assert client.flush(timeout=5)
    assert server.requests == []
    assert client.stats.unidentified == 3 and client.stats.tracked == 0


def test_hook_failures_never_reach_the_request(server, make_client, caplog):
    client = make_client()

    def broken_identify(request):
        raise KeyError("customer lookup down")

    http = meter(build_app(), client, identify=broken_identify)
    with caplog.at_level(logging.ERROR, logger="tollway_sdk"):
        response = http.get("/v1/users/5")
    assert response.status_code == 200 and response.json() == {"id": 5, "name": "Ada"}
    assert client.flush(timeout=5) and server.requests == []
    assert client.stats.errors == 1
    assert "identify hook raised" in caplog.text and "customer lookup down" in caplog.text


def test_identify_returning_a_non_string_is_not_sent(server, make_client):
    client = make_client()
    http = meter(build_app(), client, identify=lambda request: 12345)
    assert http.get("/v1/users/5").status_code == 200
    assert client.flush(timeout=5) and server.requests == []
    assert client.stats.errors == 1


def test_properties_hook_adds_fields_and_its_failure_keeps_the_event(server, make_client):
    client = make_client()
    seen: list[ResponseInfo] = []

    def properties(request, response):
        seen.append(response)
        if request.url.path == "/v1/users/1":
            raise ValueError("hook bug")
        return {"units": int(response.headers["x-units"]), "plan": request.headers.get("x-plan")}

    http = meter(build_app(), client, properties=properties, event_type="request")
    http.get("/v1/units", headers={"x-customer": "acme", "x-plan": "pro"})
    http.get("/v1/users/1", headers={"x-customer": "acme"})
    first, second = sent_properties(server, client)
    assert first["units"] == 7 and first["plan"] == "pro" and first["route"] == "/v1/units"
    assert second["route"] == "/v1/users/{user_id}" and "units" not in second
    assert seen[0].status == 200 and seen[0].response_bytes == 2
    assert client.stats.errors == 1
    assert {e["type"] for e in server.events()} == {"request"}


def test_application_errors_are_recorded_as_500_and_still_raised(server, make_client):
    client = make_client()
    app = build_app()
    app.add_middleware(TollwayASGIMiddleware, client=client, identify=customer_header)
    with pytest.raises(RuntimeError, match="application bug"):
        InProcess(app).get("/v1/boom", headers={"x-customer": "acme"})
    assert InProcess(app, raise_server_exceptions=False).get("/v1/boom").status_code == 500
    (props,) = sent_properties(server, client)
    assert props["status"] == 500 and props["route"] == "/v1/boom"


def test_a_failing_tollway_client_does_not_break_requests(server, make_client):
    client = make_client()

    def explode(*args, **kwargs):
        raise RuntimeError("queue exploded")

    client.track = explode
    http = meter(build_app(), client)
    response = http.get("/v1/users/3", headers={"x-customer": "acme"})
    assert response.status_code == 200
    assert client.stats.errors == 1


def test_plain_starlette_routes_and_mounts(server, make_client):
    async def item(request):
        return PlainTextResponse("item")

    async def health(request):
        return PlainTextResponse("ok")

    api = Starlette(routes=[Route("/items/{item_id:int}", item)])
    app = Starlette(routes=[Route("/health", health), Mount("/api", app=api)])
    client = make_client()
    http = meter(app, client)
    assert http.get("/api/items/9", headers={"x-customer": "acme"}).text == "item"
    assert http.get("/health", headers={"x-customer": "acme"}).text == "ok"
    assert [p["route"] for p in sent_properties(server, client)] == ["/api/items/{item_id:int}", "/health"]


def test_route_hook_overrides_the_template(server, make_client):
    client = make_client()
    http = meter(build_app(), client, route=lambda request: "custom:" + request.method)
    http.get("/v1/users/1", headers={"x-customer": "acme"})
    assert [p["route"] for p in sent_properties(server, client)] == ["custom:GET"]
