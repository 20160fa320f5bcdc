from __future__ import annotations

import io
import logging
import time

from flask import Flask, Response, abort, jsonify, request, stream_with_context

from tollway_sdk import TollwayWSGIMiddleware


def customer_header(req) -> str | None:
    return req.headers.get("X-Customer")


def build_app() -> Flask:
    app = Flask(__name__)

    @app.get("/v1/users/<int:user_id>")
    def get_user(user_id: int):
        if user_id == 404:
            abort(404)
        return jsonify(id=user_id, name="Ada")

    @app.post("/v1/users")
    def create_user():
        return jsonify(received=len(request.get_data())), 201

    @app.get("/v1/stream")
    def stream():
        @stream_with_context
        def chunks():
            for i in range(5):
                time.sleep(0.02)
                yield f"chunk-{i}\n" * 100

        return Response(chunks(), mimetype="text/plain")

    @app.get("/v1/boom")
    def boom():
        raise RuntimeError("application bug")

    @app.get("/v1/units")
    def units():
        return Response("ok", headers={"X-Units": "7"})

    return app


def metered(client, app=None, **options):
    app = app or build_app()
    options.setdefault("identify", customer_header)
    app.wsgi_app = TollwayWSGIMiddleware(app.wsgi_app, client, **options)
    return Buffered(app.test_client())


class Buffered:
    """Werkzeug's test client, reading each body in full and closing it as a WSGI server does."""

    def __init__(self, http) -> None:
        self.http = http

    def get(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return self.http.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return self.http.post(*args, **kwargs)


def sent_properties(server, client):
    assert client.flush(timeout=5)
    return [e["properties"] for e in server.events()]


def test_route_rule_status_and_bytes(server, make_client):
    client = make_client()
    http = metered(client)
    got = http.get("/v1/users/42", headers={"X-Customer": "acme"})
    body = b'{"name":"Grace"}'
    created = http.post("/v1/users", data=body, headers={"X-Customer": "acme", "Content-Type": "application/json"})
    assert got.status_code == 200 and created.status_code == 201
    first, second = sent_properties(server, client)
    assert first == {
        "method": "GET",
        "route": "/v1/users/<int:user_id>",
        "status": 200,
        "duration_ms": first["duration_ms"],
        "request_bytes": 0,
        "response_bytes": len(got.data),
    }
    assert first["duration_ms"] > 0
    assert second["route"] == "/v1/users" and second["status"] == 201
    assert second["request_bytes"] == len(body) and second["response_bytes"] == len(created.data)
    assert [e["customer"] for e in server.events()] == ["acme", "acme"]


def test_errors_and_unmatched_paths(server, make_client):
    client = make_client()
    http = metered(client)
    assert http.get("/v1/users/404", headers={"X-Customer": "acme"}).status_code == 404
    assert http.get("/no/such/path", headers={"X-Customer": "acme"}).status_code == 404
    assert http.get("/v1/boom", headers={"X-Customer": "acme"}).status_code == 500
    props = sent_properties(server, client)
    assert [(p["route"], p["status"]) for p in props] == [
        ("/v1/users/<int:user_id>", 404),
        ("/no/such/path", 404),  # nothing matched: raw path
        ("/v1/boom", 500),
    ]


def test_streamed_body_is_counted_when_the_server_closes_it(server, make_client):
    client = make_client()
    http = metered(client)
    response = http.get("/v1/stream", headers={"X-Customer": "acme"}, buffered=False)
    assert client.stats.tracked == 0  # not yet: the body has not been sent
    data = b"".join(response.response)
    response.close()
    (props,) = sent_properties(server, client)
    assert props["response_bytes"] == len(data) == 5 * 800
    assert props["duration_ms"] >= 90
    assert props["route"] == "/v1/stream"


def test_unidentified_and_failing_hooks_are_swallowed(server, make_client, caplog):
    client = make_client()
    http = metered(client)
    assert http.get("/v1/users/1").status_code == 200
    assert client.stats.unidentified == 1

    def broken(req):
        raise RuntimeError("identity service down")

    http = metered(client, identify=broken)
    with caplog.at_level(logging.ERROR, logger="tollway_sdk"):
        response = http.get("/v1/users/1", headers={"X-Customer": "acme"})
    assert response.status_code == 200 and response.get_json() == {"id": 1, "name": "Ada"}
    assert client.stats.errors == 1 and "identity service down" in caplog.text
    assert client.flush(timeout=5) and server.requests == []


def test_properties_hook_sees_the_response(server, make_client):
    client = make_client()

    def properties(req, response):
        return {"units": int(response.headers["x-units"]), "path": req.path}

    http = metered(client, properties=properties)
    http.get("/v1/units", headers={"X-Customer": "acme"})
    (props,) = sent_properties(server, client)
    assert props["units"] == 7 and props["path"] == "/v1/units" and props["response_bytes"] == 2


def plain_wsgi_app(environ, start_response):
    body = environ["wsgi.input"].read()
    environ["tollway.route"] = "/upload/{name}" if environ["PATH_INFO"].startswith("/upload/") else None
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"got ", str(len(body)).encode()]


def call(app, path, body=b"", headers=None):
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        **(headers or {}),
    }
    status = []
    result = app(environ, lambda s, h, *exc: status.append(s))
    data = b"".join(result)
    result.close()
    return status[0], data


def test_plain_wsgi_app_with_chunked_upload_and_route_from_environ(server, make_client):
    client = make_client()
    app = TollwayWSGIMiddleware(plain_wsgi_app, client, identify=lambda req: req.headers.get("x-customer"))
    status, data = call(app, "/upload/report.csv", b"x" * 1234, {"HTTP_X_CUSTOMER": "acme"})
    assert status == "200 OK" and data == b"got 1234"
    status, data = call(app, "/other", b"", {"HTTP_X_CUSTOMER": "acme"})
    first, second = sent_properties(server, client)
    assert first["route"] == "/upload/{name}" and first["request_bytes"] == 1234 and first["response_bytes"] == 8
    assert second["route"] == "/other"


def test_route_hook(server, make_client):
    client = make_client()
    app = TollwayWSGIMiddleware(
        plain_wsgi_app, client, identify=lambda req: "acme", route=lambda req: "hooked" + req.path
    )
    call(app, "/x")
    assert [p["route"] for p in sent_properties(server, client)] == ["hooked/x"]
