"""The outbox (delivery, retry with backoff, never lost) and the worker (billing + outbox,
graceful stop on SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.factories import create_customer, create_plan, subscribe
from tollway.config import Settings
from tollway.models import Invoice, OutboxMessage
from tollway.notification import outbox
from tollway.worker import Worker


def test_drain_delivers_retries_with_backoff_and_keeps_rows(session_factory):
    with session_factory() as session:
        outbox.emit(session, "invoice.finalized", {"id": "inv_1"}, key="inv_1")
        outbox.emit(session, "subscription.created", {"id": "s1"}, key="s1")
        session.commit()
    seen: list[str] = []
    failing = {"on": True}

    def handler(message: OutboxMessage) -> None:
        if message.topic == "invoice.finalized" and failing["on"]:
            raise ConnectionError("webhook endpoint down")
        seen.append(message.topic)

    outbox.register("*", handler)
    try:
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert outbox.drain(session_factory, now=now) == (1, 1)
        with session_factory() as session:
            failed = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "invoice.finalized")).one()
            assert failed.delivered_at is None and failed.attempts == 1
            assert "webhook endpoint down" in (failed.last_error or "")
            assert failed.available_at == now + timedelta(seconds=5)
        assert outbox.drain(session_factory, now=now + timedelta(seconds=1)) == (0, 0)  # not due yet
        assert outbox.drain(session_factory, now=now + timedelta(seconds=6)) == (0, 1)
        with session_factory() as session:
            again = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "invoice.finalized")).one()
            assert again.attempts == 2 and again.available_at == now + timedelta(seconds=16)  # 10 s backoff
        failing["on"] = False
        assert outbox.drain(session_factory, now=now + timedelta(seconds=20)) == (1, 0)
        assert seen == ["subscription.created", "invoice.finalized"]
        with session_factory() as session:
            rows = list(session.scalars(select(OutboxMessage)))
            assert len(rows) == 2 and all(r.delivered_at is not None for r in rows)
    finally:
        outbox.unregister("*", handler)
    assert outbox.backoff(30) == timedelta(hours=1)


def test_worker_runs_billing_and_drains_then_stops(api, session_factory, settings):
    create_customer(api, id="c")
    create_plan(
        api,
        code="m",
        fees={"recurring": {"amount": "5.00", "in_advance": True, "prorate": True}},
        charges=[],
        publish=True,
    )
    subscribe(api, id="s1", customer="c", plan="m", start="2026-01-01T00:00:00Z")
    delivered: list[str] = []
    # Every month from January up to the current one has ended and is invoiced exactly once.
    now = datetime.now(UTC)
    expected = (now.year - 2026) * 12 + now.month - 1
    outbox.register("invoice.finalized", lambda m: delivered.append(m.payload["number"]))
    try:
        cfg = Settings(database_url=settings.database_url, outbox_poll_interval_seconds=0.05)
        worker = Worker(session_factory, cfg)
        thread = worker.start_thread()
        deadline = time.monotonic() + 30
        # The outbox is drained by the worker's notification thread, alongside the billing run.
        while time.monotonic() < deadline and len(delivered) < expected:
            time.sleep(0.05)
        worker.stop()
        thread.join(10)
        assert not thread.is_alive()
    finally:
        outbox.HANDLERS["invoice.finalized"].clear()
    with session_factory() as session:
        count = len(list(session.scalars(select(Invoice))))
    assert count == expected and len(delivered) == expected
    assert delivered[:2] == ["INV-000001", "INV-000002"]


def test_tollway_worker_stops_on_sigterm(db_url):
    env = {**os.environ, "TOLLWAY_DATABASE_URL": db_url, "TOLLWAY_OUTBOX_POLL_INTERVAL_SECONDS": "0.2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tollway", "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            lines.append(raw.decode())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("worker started" in line for line in lines):
        time.sleep(0.1)
    assert any("worker started" in line for line in lines), "".join(lines)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    reader.join(5)
    assert any("worker stopped" in line for line in lines)
