"""End to end: the SDK and its middlewares against the real Tollway server.

Each test starts ``tollway serve`` as a subprocess on a fresh SQLite database,
creates keys with ``tollway keys create``, runs a real FastAPI app (uvicorn in a
thread) or Flask app (werkzeug in a thread) metered by the middleware, drives
HTTP requests at it, flushes, and reads the meters back through
``GET /v1/meters/{key}/usage``. The last test SIGKILLs the server in the middle
of a stream of events and restarts it on the same database.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from flask import Flask, jsonify
from flask import request as flask_request
from werkzeug.serving import make_server

from tollway_sdk import Client, TollwayASGIMiddleware, TollwayWSGIMiddleware

pytestmark = pytest.mark.e2e


def _tollway_executable() -> str | None:
    beside = Path(sys.executable).with_name("tollway")
    return str(beside) if beside.exists() else shutil.which("tollway")


TOLLWAY = _tollway_executable()
if TOLLWAY is None:  # pragma: no cover
    pytest.skip("the tollway server is not installed in this environment", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TollwayServer:
    """``tollway serve`` in a subprocess, on its own SQLite file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TOLLWAY_DATABASE_URL": f"sqlite:///{workdir / 't.db'}"}
        self.log = workdir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def create_key(self, scope: str) -> str:
        done = subprocess.run(
            [TOLLWAY, "keys", "create", "--scope", scope],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1].strip()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [TOLLWAY, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        # One client for the polls: each httpx.get() builds a TLS context (~30 ms of CPU),
        # taken from the server starting up.
        with httpx.Client(timeout=1) as probe:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"tollway serve exited with {self.process.returncode}:\n{self.logs()}")
                try:
                    probe.get(f"{self.url}/healthz")
                    return
                except httpx.HTTPError:
                    time.sleep(0.1)
        raise AssertionError(f"tollway serve did not come up:\n{self.logs()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


class Admin:
    def __init__(self, server: TollwayServer, key: str) -> None:
        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def create_meter(self, key: str, event_type: str, aggregation: str, **extra: Any) -> None:
        body = {"key": key, "name": key, "event_type": event_type, "aggregation": aggregation, **extra}
        response = self.http.post("/v1/meters", json=body)
        assert response.status_code in (200, 201), response.text

    def usage(self, meter: str, customer: str, **params: str) -> list[dict[str, Any]]:
        now = datetime.now(timezone.utc)
        query = {
            "customer": customer,
            "from": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **params,
        }
        response = self.http.get(f"/v1/meters/{meter}/usage", params=query)
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["meter"] == meter
        return doc["data"]

    def total(self, meter: str, customer: str) -> Decimal:
        rows = self.usage(meter, customer)
        assert all(isinstance(row["value"], str) for row in rows), rows  # decimal strings
        return sum((Decimal(row["value"]) for row in rows), Decimal(0))


@pytest.fixture(scope="module")
def tollway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TollwayServer, Admin, str]]:
    server = TollwayServer(tmp_path_factory.mktemp("tollway"))
    admin_key = server.create_key("admin")
    ingest_key = server.create_key("ingest")
    assert admin_key.startswith("tw_") or len(admin_key) > 20
    server.start()
    admin = Admin(server, admin_key)
    admin.create_meter("e2e_calls", "api_call", "count", group_by=["route"])
    admin.create_meter("e2e_bytes", "api_call", "sum", value_property="response_bytes")
    admin.create_meter("e2e_errors", "api_call", "count", filters=[{"property": "status", "op": "gte", "value": 400}])
    try:
        yield server, admin, ingest_key
    finally:
        server.stop()


def grouped(rows: list[dict[str, Any]], group: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for row in rows:
        name = row["groups"].get(group)
        out[name] = out.get(name, Decimal(0)) + Decimal(row["value"])
    return out


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/users/{user_id}")
    def get_user(user_id: int) -> dict[str, Any]:
        return {"id": user_id, "name": "Ada" * user_id}

    @app.post("/v1/users", status_code=201)
    async def create_user(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.get("/v1/report")
    def report() -> StreamingResponse:
        def rows() -> Iterator[bytes]:
            for i in range(20):
                yield f"row {i}\n".encode() * 50

        return StreamingResponse(rows(), media_type="text/plain")

    return app


class UvicornThread:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_fastapi_app_metered_end_to_end(tollway):
    server, admin, ingest_key = tollway
    customer = "e2e-fastapi"
    client = Client(server.url, ingest_key, flush_interval=0.2, batch_size=50)
    app = fastapi_app()
    app.add_middleware(TollwayASGIMiddleware, client=client, identify=lambda request: request.headers.get("x-customer"))
    received = 0
    with UvicornThread(app) as api, httpx.Client(base_url=api.url, headers={"x-customer": customer}) as http:
        for user_id in range(1, 6):
            response = http.get(f"/v1/users/{user_id}")
            assert response.status_code == 200
            received += len(response.content)
        for _ in range(3):
            response = http.post("/v1/users", json={"name": "Grace"})
            assert response.status_code == 201
            received += len(response.content)
        report = http.get("/v1/report")
        received += len(report.content)
        missing = http.get("/v1/users/not-a-number")  # 422 from FastAPI
        received += len(missing.content)
        anonymous = httpx.get(f"{api.url}/v1/users/1")  # no customer: not metered
        assert anonymous.status_code == 200
    assert client.flush(timeout=30)
    client.close()

    assert client.stats.unidentified == 1 and client.stats.errors == 0
    assert client.stats.accepted == 10 and client.stats.failed == 0 and client.stats.rejected == 0
    assert grouped(admin.usage("e2e_calls", customer, group_by="route"), "route") == {
        "/v1/users/{user_id}": Decimal(6),
        "/v1/users": Decimal(3),
        "/v1/report": Decimal(1),
    }
    assert admin.total("e2e_calls", customer) == 10
    assert admin.total("e2e_bytes", customer) == received
    assert admin.total("e2e_errors", customer) == 1


def flask_app() -> Flask:
    app = Flask(__name__)

    @app.get("/v1/forecast/<city>")
    def forecast(city: str):
        return jsonify(city=city, days=[1, 2, 3])

    @app.post("/v1/upload")
    def upload():
        return jsonify(size=len(flask_request.get_data())), 201

    return app


def test_flask_app_metered_end_to_end(tollway):
    server, admin, ingest_key = tollway
    customer = "e2e-flask"
    client = Client(server.url, ingest_key, flush_interval=0.2)
    app = flask_app()
    app.wsgi_app = TollwayWSGIMiddleware(
        app.wsgi_app, client, identify=lambda request: request.headers.get("X-Customer")
    )
    httpd = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    received = 0
    try:
        base = f"http://127.0.0.1:{httpd.server_port}"
        with httpx.Client(base_url=base, headers={"X-Customer": customer}) as http:
            for city in ("rome", "oslo", "lima", "kyiv"):
                response = http.get(f"/v1/forecast/{city}")
                assert response.status_code == 200
                received += len(response.content)
            response = http.post("/v1/upload", content=b"x" * 5000)
            assert response.status_code == 201
            received += len(response.content)
            response = http.get("/missing")
            assert response.status_code == 404
            received += len(response.content)
    finally:
        httpd.shutdown()
        thread.join(10)
    assert client.flush(timeout=30)
    client.close()

    assert client.stats.accepted == 6 and client.stats.failed == 0
    assert grouped(admin.usage("e2e_calls", customer, group_by="route"), "route") == {
        "/v1/forecast/<city>": Decimal(4),
        "/v1/upload": Decimal(1),
        "/missing": Decimal(1),
    }
    assert admin.total("e2e_bytes", customer) == received
    assert admin.total("e2e_errors", customer) == 1


def test_a_resent_event_id_is_counted_once_by_the_real_server(tollway):
    server, admin, ingest_key = tollway
    customer = "e2e-idempotent"
    for _ in range(2):  # e.g. a provider replaying its own outbox after a crash
        with Client(server.url, ingest_key) as client:
            for i in range(7):
                client.track(customer, "api_call", {"route": "/replay", "status": 200}, id=f"replay-{i}")
    assert client.stats.accepted == 0 and client.stats.duplicates == 7
    assert admin.total("e2e_calls", customer) == 7


def test_server_killed_mid_stream_loses_and_duplicates_nothing(tmp_path):
    server = TollwayServer(tmp_path)
    admin_key = server.create_key("admin")
    ingest_key = server.create_key("ingest")
    server.start()
    try:
        admin = Admin(server, admin_key)
        admin.create_meter("calls", "api_call", "count")
        customer = "e2e-crash"
        client = Client(
            server.url,
            ingest_key,
            batch_size=20,
            flush_interval=0.05,
            # a retry budget (~5 min at the 0.5 s cap) that outlasts the restart below even on a
            # loaded machine: the test is about nothing lost across a crash, not about giving up
            max_retries=600,
            backoff_base=0.05,
            backoff_max=0.5,
            timeout=5,
        )
        tracked: list[str] = []

        def track(n: int) -> None:
            for _ in range(n):
                event_id = client.track(customer, "api_call", {"n": len(tracked)})
                assert event_id is not None
                tracked.append(event_id)
                time.sleep(0.002)

        track(150)
        server.kill()  # SIGKILL in the middle of the stream, batches possibly in flight
        track(200)  # keeps tracking while the server is down
        assert client.stats.retries > 0 or client.queue_size > 0
        server.start()  # same database, same port
        track(150)
        assert client.flush(timeout=120), server.logs()
        client.close()

        stats = client.stats
        assert len(tracked) == len(set(tracked)) == 500
        assert stats.dropped == 0 and stats.failed == 0 and stats.rejected == 0, stats
        # Every event arrived once: a batch the server stored just before the kill,
        # whose answer was lost, was sent again with the same ids and came back as
        # duplicates, and the meter counts each event once.
        assert stats.accepted + stats.duplicates == stats.sent == 500, stats
        assert admin.total("calls", customer) == 500
    finally:
        server.stop()
