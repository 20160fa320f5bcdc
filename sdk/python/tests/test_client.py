from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime

import pytest

from fake_tollway import Reply
from tollway_sdk import AsyncClient, Client
from tollway_sdk.client import MAX_BODY_BYTES, _parse_retry_after


def ids(events):
    return [e["id"] for e in events]


def test_batches_follow_batch_size_then_flush_sends_the_rest(server, make_client):
    client = make_client(batch_size=5)
    tracked = [client.track("acme", "api_call", {"n": i}) for i in range(12)]
    # Two full batches go out on their own; the last two wait for flush().
    server.wait_for_requests(2)
    time.sleep(0.1)
    assert [len(r.events) for r in server.requests] == [5, 5]
    assert client.flush(timeout=5)
    assert [len(r.events) for r in server.requests] == [5, 5, 2]
    assert ids(server.events()) == tracked
    assert [e["properties"]["n"] for e in server.events()] == list(range(12))
    assert client.stats.sent == 12 and client.stats.accepted == 12 and client.stats.batches == 3


def test_flush_interval_sends_a_partial_batch_without_flush(server, make_client):
    client = make_client(batch_size=100, flush_interval=0.2)
    start = time.monotonic()
    client.track("acme", "api_call")
    client.track("acme", "api_call")
    (request,) = server.wait_for_requests(1, timeout=3)
    assert len(request.events) == 2
    assert request.at - start >= 0.15


def test_body_is_gzipped_json_with_bearer_key(server, make_client):
    client = make_client(api_key="tw_ingest_abc")
    event_id = client.track("acme", "api_call", {"endpoint": "/v1/forecast", "status": 200})
    assert client.flush(timeout=5)
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer tw_ingest_abc"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/json"
    assert request.raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(request.raw) == request.body
    doc = json.loads(request.body)
    assert list(doc) == ["events"]
    (event,) = doc["events"]
    assert event["id"] == event_id and event_id.startswith("evt_")
    assert event["customer"] == "acme" and event["type"] == "api_call"
    assert event["properties"] == {"endpoint": "/v1/forecast", "status": 200}
    ts = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - ts).total_seconds()) < 5


def test_gzip_can_be_turned_off(server, make_client):
    client = make_client(gzip_level=0)
    client.track("acme", "api_call")
    assert client.flush(timeout=5)
    (request,) = server.requests
    assert "content-encoding" not in request.headers
    assert json.loads(request.raw)["events"][0]["customer"] == "acme"


def test_event_fields_are_normalised_and_validated(server, make_client):
    client = make_client()
    rome = timezone(timedelta(hours=2))
    client.track(
        "acme",
        "order",
        {"amount": Decimal("12.50"), "at": datetime(2026, 1, 5, 12, 0, tzinfo=rome)},
        id="order-17",
        timestamp=datetime(2026, 1, 5, 12, 0, tzinfo=rome),
    )
    client.track("acme", "order", id="order-18", timestamp="2026-01-05T10:00:00Z")
    assert client.flush(timeout=5)
    first, second = server.events()
    assert first["id"] == "order-17"
    assert first["timestamp"] == "2026-01-05T10:00:00.000000Z"
    assert first["properties"] == {"amount": 12.5, "at": "2026-01-05T10:00:00.000000Z"}
    # Decimals go out as JSON numbers with their exact digits (summable by meters).
    assert b'"amount":12.50,' in server.requests[0].body
    assert second["timestamp"] == "2026-01-05T10:00:00Z"

    with pytest.raises(ValueError, match="naive"):
        client.track("acme", "x", timestamp=datetime(2026, 1, 5))
    with pytest.raises(ValueError, match="customer"):
        client.track("", "x")
    with pytest.raises(ValueError, match="type"):
        client.track("acme", "")
    with pytest.raises(ValueError, match="id"):
        client.track("acme", "x", id="a" * 201)
    with pytest.raises(ValueError):
        client.track("acme", "x", {"v": float("nan")})
    with pytest.raises(TypeError):
        client.track("acme", "x", {"v": object()})
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="cycle"):
        client.track("acme", "x", cyclic)
    with pytest.raises(ValueError, match="bytes"):
        client.track("acme", "x", {"blob": "a" * MAX_BODY_BYTES})
    assert client.stats.tracked == 2


def test_properties_are_snapshotted_at_track_time(server, make_client):
    client = make_client()
    props = {"n": 1}
    client.track("acme", "api_call", props)
    props["n"] = 2
    assert client.flush(timeout=5)
    assert server.events()[0]["properties"] == {"n": 1}


def test_retry_after_is_honoured_and_the_retry_carries_the_same_ids(server, make_client):
    server.reply(Reply(429, headers={"Retry-After": "1"}))
    client = make_client(batch_size=10, backoff_base=0.001, backoff_max=0.001)
    tracked = [client.track("acme", "api_call", {"i": i}) for i in range(3)]
    assert client.flush(timeout=10)
    first, second = server.requests
    assert first.status == 429 and second.status == 202
    # The backoff alone would have waited at most 1 ms.
    assert second.at - first.at >= 0.95
    assert ids(first.events) == ids(second.events) == tracked
    assert first.body == second.body
    assert client.stats.retries == 1
    assert client.stats.sent == 3 and client.stats.accepted == 3


def test_5xx_and_dropped_connections_are_retried(server, make_client):
    server.reply(Reply(503), Reply(drop=True), Reply(500))
    client = make_client()
    tracked = [client.track("acme", "api_call") for _ in range(4)]
    assert client.flush(timeout=10)
    assert len(server.requests) == 4
    assert all(ids(r.events) == tracked for r in server.requests)
    assert client.stats.retries == 3
    assert client.stats.accepted == 4 and client.stats.failed == 0
    assert list(server.stored) == tracked


def test_lost_answer_then_retry_is_deduplicated_by_id(server, make_client):
    # The server stores the batch but the answer is a 500 (as if it were lost):
    # the retry carries the same ids, so nothing is counted twice.
    server.reply(Reply(500, store=True))
    client = make_client()
    tracked = [client.track("acme", "api_call") for _ in range(3)]
    assert client.flush(timeout=10)
    assert len(server.requests) == 2
    assert list(server.stored) == tracked
    assert client.stats.duplicates == 3 and client.stats.accepted == 0
    assert client.stats.sent == 3


@pytest.mark.parametrize("status", [400, 401, 403, 413, 422])
def test_4xx_other_than_429_is_not_retried(server, make_client, caplog, status):
    server.reply(Reply(status, body={"type": "about:blank", "title": "Bad", "status": status, "detail": "nope"}))
    client = make_client()
    with caplog.at_level(logging.ERROR, logger="tollway_sdk"):
        client.track("acme", "api_call")
        client.track("acme", "api_call")
        assert client.flush(timeout=5)
        time.sleep(0.2)
    assert len(server.requests) == 1
    assert client.stats.rejected == 2 and client.stats.retries == 0 and client.stats.sent == 0
    assert f"HTTP {status}" in caplog.text and "nope" in caplog.text


def test_per_event_errors_in_a_202_are_counted_and_logged(server, make_client, caplog):
    server.reject = lambda e: "customer: invalid" if e["customer"] == "bad customer" else None
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="tollway_sdk"):
        client.track("acme", "api_call")
        bad = client.track("bad customer", "api_call")
        client.track("acme", "api_call")
        assert client.flush(timeout=5)
    assert client.stats.accepted == 2 and client.stats.rejected == 1 and client.stats.sent == 3
    assert bad in caplog.text and "customer: invalid" in caplog.text
    assert len(server.requests) == 1


def test_gives_up_after_max_retries(server, make_client, caplog):
    server.reply(*[Reply(503)] * 10)
    client = make_client(max_retries=2)
    with caplog.at_level(logging.ERROR, logger="tollway_sdk"):
        client.track("acme", "api_call")
        assert client.flush(timeout=10)
    assert len(server.requests) == 3
    assert client.stats.failed == 1 and client.stats.retries == 2
    assert "giving up on 1 events" in caplog.text


def test_full_queue_drops_the_newest_events(server, make_client, caplog):
    client = make_client(max_queue_size=3, batch_size=100)
    with caplog.at_level(logging.WARNING, logger="tollway_sdk"):
        results = [client.track("acme", "api_call", {"i": i}) for i in range(5)]
    assert all(results[:3]) and results[3:] == [None, None]
    assert client.stats.tracked == 3 and client.stats.dropped == 2
    assert "queue is full" in caplog.text
    assert client.flush(timeout=5)
    assert [e["properties"]["i"] for e in server.events()] == [0, 1, 2]
    # Room again once the queue drained.
    assert client.track("acme", "api_call") is not None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flush_times_out_and_close_abandons_when_the_server_is_down(make_client):
    client = make_client(base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=50)
    client.track("acme", "api_call")
    start = time.monotonic()
    assert client.flush(timeout=0.3) is False
    assert time.monotonic() - start < 1.5
    assert client.close(timeout=0.3) is False
    assert time.monotonic() - start < 4
    assert client.stats.failed == 1 and client.stats.retries >= 1


def test_close_delivers_what_is_queued_and_refuses_new_events(server, make_client):
    client = make_client(batch_size=100)
    for _ in range(3):
        client.track("acme", "api_call")
    assert client.close() is True
    assert len(server.events()) == 3
    assert client.track("acme", "api_call") is None
    assert client.stats.dropped == 1
    assert client.close() is True  # idempotent
    assert client.flush(timeout=1) is True


def test_context_manager_closes(server):
    with Client(server.url, "k", flush_interval=60) as client:
        client.track("acme", "api_call")
    assert len(server.events()) == 1


def test_pending_events_are_delivered_at_interpreter_exit(server, tmp_path):
    script = tmp_path / "track_and_exit.py"
    script.write_text(
        "import sys\n"
        "from tollway_sdk import Client\n"
        "client = Client(sys.argv[1], 'k', flush_interval=60, batch_size=100)\n"
        "client.track('acme', 'api_call', id='atexit-1')\n"
        "client.track('acme', 'api_call', id='atexit-2')\n"
        # no flush, no close: the atexit hook must deliver
    )
    subprocess.run([sys.executable, str(script), server.url], check=True, timeout=30)
    assert ids(server.events()) == ["atexit-1", "atexit-2"]


def test_concurrent_tracking_from_many_threads(server, make_client):
    client = make_client(batch_size=100, flush_interval=0.05)
    tracked: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        mine = [client.track(f"cust-{n}", "api_call", {"i": i}) for i in range(250)]
        with lock:
            tracked.extend(mine)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(timeout=20)
    assert len(tracked) == len(set(tracked)) == 2000
    assert sorted(server.stored) == sorted(tracked)
    assert client.stats.sent == 2000 and client.stats.accepted == 2000
    assert all(len(r.events) <= 100 for r in server.requests)


def test_batches_stay_under_one_mebibyte(server, make_client):
    client = make_client(batch_size=100, gzip_level=1)
    for _ in range(5):
        client.track("acme", "upload", {"blob": "x" * 300_000})
    assert client.flush(timeout=10)
    assert len(server.events()) == 5
    assert len(server.requests) >= 2
    assert all(len(r.body) <= MAX_BODY_BYTES for r in server.requests)


def test_parse_retry_after():
    assert _parse_retry_after("3") == 3.0
    assert _parse_retry_after("0") == 0.0
    assert _parse_retry_after("-5") == 0.0
    assert _parse_retry_after("soon") is None
    assert _parse_retry_after(None) is None
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 25 <= _parse_retry_after(format_datetime(later, usegmt=True)) <= 31


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError):
        Client("http://x", "k", batch_size=1001)
    with pytest.raises(ValueError):
        Client("http://x", "")
    with pytest.raises(ValueError, match="encryption_key"):
        Client("http://x", "k", encrypt_fields=("email",))
    with pytest.raises(ValueError, match="http"):
        Client("localhost:8080", "k")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_queue_and_worker(server, make_client):
    client = make_client(batch_size=100)
    client.track("acme", "api_call", id="parent-1")  # worker thread now running in the parent
    pid = os.fork()
    if pid == 0:  # child: threads did not survive the fork
        code = 1
        try:
            client.track("acme", "api_call", id="child-1")
            code = 0 if client.flush(timeout=5) and client.stats.sent == 1 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(timeout=5)
    assert sorted(e["id"] for e in server.events()) == ["child-1", "parent-1"]


def test_async_client_never_blocks_the_event_loop(server):
    server.default_delay = 0.3  # a slow server

    async def main() -> tuple[int, bool, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        async with AsyncClient(server.url, "k", flush_interval=60) as client:
            task = asyncio.create_task(ticker())
            start = time.perf_counter()
            for i in range(200):
                client.track("acme", "api_call", {"i": i})
            track_seconds = time.perf_counter() - start
            ok = await client.flush(timeout=5)
            task.cancel()
            return ticks, ok, track_seconds

    ticks, ok, track_seconds = asyncio.run(main())
    assert ok
    assert ticks >= 5  # the loop kept running while flush() waited on the slow server
    assert track_seconds < 0.25
    assert len(server.events()) == 200
