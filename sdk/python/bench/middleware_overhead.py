"""Per-request overhead of TollwayASGIMiddleware on a FastAPI app.

Two identical FastAPI apps, one with the middleware, are called in-process with
ASGI scopes (no sockets on the request path, so the figures are the app's and
the middleware's CPU time alone). The metered app's events are really
delivered: the client's background thread batches, gzips and POSTs them to a
sink server in a separate process that answers 202, so the figures include the
worker thread competing for the GIL.

Runs alternate bare/metered; each run is N requests; the report gives the
median µs/request of each side over the runs, the ratio and the difference,
both in wall-clock time and in CPU time of the whole process.

    .venv/bin/python sdk/python/bench/middleware_overhead.py --requests 20000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
from fastapi import FastAPI

from tollway_sdk import Client, TollwayASGIMiddleware

SINK = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"accepted":0,"duplicates":0,"errors":[]}'
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/users/{user_id}")
    async def get_user(user_id: int) -> dict[str, Any]:
        return {"id": user_id, "name": "Ada Lovelace", "plan": "pro"}

    return app


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"x-customer", b"acme"), (b"accept", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    return None


async def run(app: Any, n: int) -> tuple[float, float]:
    """(wall µs/request, process CPU µs/request) for n requests.

    The CPU figure counts every thread of the process (the SDK's sender too) and
    is less disturbed than wall time by other processes on a shared machine.
    """
    scopes = [scope_for(f"/v1/users/{i % 1000}") for i in range(n)]
    gc.collect()
    start, cpu_start = time.perf_counter(), time.process_time()
    for scope in scopes:
        await app(scope, receive, send)
    return (time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu_start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per side (>= 3)")
    parser.add_argument("--encrypt-field", default=None, help="also encrypt this property (e.g. route)")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")

    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())  # type: ignore[union-attr]
        options: dict[str, Any] = {}
        if args.encrypt_field:
            from tollway_sdk.crypto import generate_key

            options = {"encrypt_fields": (args.encrypt_field,), "encryption_key": generate_key()}
        client = Client(f"http://127.0.0.1:{port}", "bench-key", max_queue_size=1_000_000, **options)

        bare = make_app()
        metered = make_app()
        metered.add_middleware(
            TollwayASGIMiddleware, client=client, identify=lambda request: request.headers.get("x-customer")
        )

        async def bench() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
            # Sanity: both apps answer the same thing.
            for app in (bare, metered):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                    response = await http.get("/v1/users/7", headers={"x-customer": "acme"})
                    assert response.status_code == 200, response.text
            await run(bare, 2000)  # warm-up
            await run(metered, 2000)
            bare_runs: list[tuple[float, float]] = []
            metered_runs: list[tuple[float, float]] = []
            for _ in range(args.runs):
                bare_runs.append(await run(bare, args.requests))
                metered_runs.append(await run(metered, args.requests))
            return bare_runs, metered_runs

        bare_runs, metered_runs = asyncio.run(bench())
        flushed = client.flush(timeout=60)
        client.close()
    finally:
        sink.terminate()
        sink.wait(10)

    stats = client.stats
    print(f"python {platform.python_version()} on {platform.machine()}, {args.runs} runs x {args.requests} requests")
    for index, label in ((0, "wall"), (1, "cpu")):
        bare_side = [r[index] for r in bare_runs]
        metered_side = [r[index] for r in metered_runs]
        bare_median = statistics.median(bare_side)
        metered_median = statistics.median(metered_side)
        print(f"[{label}] bare    µs/request per run: " + ", ".join(f"{v:.1f}" for v in bare_side))
        print(f"[{label}] metered µs/request per run: " + ", ".join(f"{v:.1f}" for v in metered_side))
        print(
            f"[{label}] median bare {bare_median:.1f}, metered {metered_median:.1f} µs/request: "
            f"overhead {metered_median - bare_median:.1f} µs/request, ratio {metered_median / bare_median:.3f}"
        )
    print(
        f"events tracked {stats.tracked}, sent {stats.sent}, dropped {stats.dropped}, "
        f"failed {stats.failed}, batches {stats.batches}, flushed {flushed}"
    )


if __name__ == "__main__":
    main()
